"""The web UI's public API names: the contract both the handler tests and the browser/API
tests hold the app to (scripts built on gradio_client rely on them)."""

API_NAMES = {
    "search",
    "item_detail",
    "add_root",
    "remove_root",
    "start_indexing",
    "stop_indexing",
    "open_file",
    "index_status",
    "library_status",
    "list_models",
}
