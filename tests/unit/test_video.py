"""Video decoding: sampling, scene cuts, duplicates, timestamps, formats, rotation, sound.

Every video is generated here (tests/media_video.py): 12 s, three 4 s scenes (red, a moving
white square on black, noise), cuts at 4 s and 8 s.
"""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import search.decode.video as video
from search.decode.video import (
    MAX_FRAME_SHORT_SIDE,
    Frame,
    load_video_audio,
    probe_video,
    sample_frames,
)
from search.errors import BadFileError
from tests.media_video import (
    SCENE_CUTS_S,
    TONE_HZ,
    make_video,
    reference_pts,
    still_frame,
    vfr_frame_times,
)

# (suffix, video encoder): every container and codec Trove promises to read.
FORMATS = [
    (".mp4", "libx264"),
    (".mp4", "libx265"),
    (".mkv", "libx264"),
    (".mkv", "libvpx-vp9"),
    (".webm", "libvpx"),
    (".webm", "libvpx-vp9"),
    (".mov", "libx264"),
    (".avi", "mpeg4"),
]
DECODER_NAME = {
    "libx264": "h264",
    "libx265": "hevc",
    "libvpx": "vp8",
    "libvpx-vp9": "vp9",
    "mpeg4": "mpeg4",
}


@pytest.fixture(scope="module")
def scenes_mp4(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "scenes.mp4", tone=(2.0, 5.0))


def first_at_or_after(times: list[float], target: float) -> float:
    return next(t for t in times if t >= target - 1e-6)


def test_scene_cuts_found_within_one_sampling_step(scenes_mp4):
    frames = sample_frames(str(scenes_mp4), rate=1.0)
    cuts = [f.t_s for f in frames if f.scene_change]
    assert len(cuts) == len(SCENE_CUTS_S)
    for found, cut in zip(cuts, SCENE_CUTS_S, strict=True):
        assert cut <= found < cut + 1.0


def test_scene_detector_off_takes_only_uniform_frames(scenes_mp4):
    frames = sample_frames(str(scenes_mp4), rate=0.5, scene_threshold=None)
    assert not any(f.scene_change for f in frames)
    # Targets every 2 s; the red scene is static, so 2 s is a duplicate of 0 s and dropped.
    assert [f.t_s for f in frames] == pytest.approx([0, 4, 6, 8, 10])


def test_timestamps_are_the_reference_decode_pts(scenes_mp4):
    pts = reference_pts(scenes_mp4)
    frames = sample_frames(str(scenes_mp4), rate=2.0, scene_threshold=None)
    assert frames, "no frames sampled"
    for frame in frames:
        assert frame.t_s in pts
        # A uniform sample is the first frame at or after its target on the 0.5 s grid.
        target = round(frame.t_s * 2) / 2
        assert frame.t_s == first_at_or_after(pts, target)


def test_variable_frame_rate_uses_pts(tmp_path):
    times = vfr_frame_times()
    path = make_video(tmp_path / "vfr.mp4", frame_times=times)
    assert reference_pts(path) == pytest.approx(times, abs=1e-3)
    frames = sample_frames(str(path), rate=1.0, scene_threshold=None)
    # Frame indices / nominal fps would put these far off: 4 fps, then 25, then 1, jitter.
    # 1-3 s are red and static like 0 s, so they are dropped as duplicates.
    expected = [first_at_or_after(times, k) for k in [0, 4, 5, 6, 7, 8, 9, 10, 11]]
    assert [f.t_s for f in frames] == pytest.approx(expected, abs=1e-3)


def test_near_duplicates_dropped_and_span_kept(tmp_path):
    path = make_video(tmp_path / "still.mkv", painter=still_frame, duration_s=8.0)
    frames = sample_frames(str(path))
    assert len(frames) == 1
    assert frames[0].t_s == 0.0
    assert frames[0].end_s == pytest.approx(8.0, abs=0.1)


def test_spans_are_contiguous_and_cover_the_video(scenes_mp4):
    frames = sample_frames(str(scenes_mp4))
    for a, b in zip(frames, frames[1:], strict=False):
        assert a.end_s == b.t_s
    assert frames[-1].end_s == pytest.approx(12.0, abs=0.2)


def test_cap_widens_the_interval_over_the_whole_video(scenes_mp4):
    frames = sample_frames(str(scenes_mp4), rate=10.0, max_frames=8)
    assert len(frames) <= 8
    # 6 uniform slots over 12 s: one every 2 s, reaching the last scene.
    uniform = [f.t_s for f in frames if not f.scene_change]
    assert uniform[0] == 0.0 and uniform[-1] >= 8.0


def test_keyframes_only_decoding(tmp_path, monkeypatch):
    path = make_video(tmp_path / "gop.mp4", fps=10, gop=10)
    with av.open(str(path)) as container:
        keyframe_pts = [
            float(f.pts * f.time_base) for f in container.decode(video=0) if f.key_frame
        ]
    assert len(keyframe_pts) >= 12
    frames = sample_frames(str(path), decode="keyframes")
    assert {f.t_s for f in frames} <= set(keyframe_pts)
    assert frames[-1].t_s >= 8.0
    # "auto" switches to keyframes once the work exceeds its budget (here: 5 frames' worth).
    monkeypatch.setattr(video, "FULL_DECODE_MAX_PIXELS", 160 * 120 * 5)
    assert [f.t_s for f in sample_frames(str(path))] == [f.t_s for f in frames]


def test_unknown_duration_still_capped_and_spread(scenes_mp4, monkeypatch):
    # Some mkv/webm/stream files announce no duration: the interval cannot be sized up
    # front, so it doubles whenever the uniform budget fills, dropping every other sample.
    monkeypatch.setattr(video, "_duration_s", lambda container, stream: None)
    frames = sample_frames(str(scenes_mp4), rate=10.0, max_frames=8)
    assert len(frames) <= 8
    uniform = [f.t_s for f in frames if not f.scene_change]
    assert uniform[0] == 0.0 and uniform[-1] >= 8.0


def test_min_side_and_default_size(tmp_path):
    path = make_video(tmp_path / "big.mp4", size=(1280, 720), duration_s=2.0)
    small = sample_frames(str(path), min_side=224)
    assert min(small[0].image.size) == 224
    assert small[0].image.mode == "RGB"
    default = sample_frames(str(path))
    assert min(default[0].image.size) == MAX_FRAME_SHORT_SIDE


@pytest.mark.parametrize("suffix,codec", FORMATS, ids=[f"{s[1:]}-{c}" for s, c in FORMATS])
def test_every_container_and_codec_decodes(tmp_path, suffix, codec):
    # The pinned PyAV wheel brings its own FFmpeg with every encoder listed.
    assert codec in av.codecs_available, f"PyAV's FFmpeg has no {codec} encoder"
    path = make_video(tmp_path / f"clip{suffix}", codec=codec, tone=(2.0, 5.0))
    info = probe_video(str(path))
    assert info.codec == DECODER_NAME[codec]
    assert (info.width, info.height) == (160, 120)
    assert info.duration_s == pytest.approx(12.0, abs=0.1)
    assert info.has_audio
    frames = sample_frames(str(path), min_side=64)
    assert [f.t_s for f in frames if f.scene_change] == pytest.approx(SCENE_CUTS_S, abs=0.3)
    red = np.asarray(frames[0].image)
    assert red[..., 0].mean() > 180 and red[..., 1:].mean() < 40
    sound = load_video_audio(str(path))
    assert sound is not None and sound.dtype == np.float32 and sound.ndim == 1


def marker_painter(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Black with a white block in the stored frame's top-left corner."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[: height // 3, : width // 4] = 255
    return frame


def bright_corner(image: Image.Image) -> str:
    pixels = np.asarray(image.convert("L"), dtype=float)
    h, w = pixels.shape
    corners = {
        "top-left": pixels[: h // 4, : w // 4],
        "top-right": pixels[: h // 4, -w // 4 :],
        "bottom-left": pixels[-h // 4 :, : w // 4],
        "bottom-right": pixels[-h // 4 :, -w // 4 :],
    }
    return max(corners, key=lambda k: corners[k].mean())


def test_rotated_phone_video_comes_out_upright(tmp_path):
    # A phone held upright stores landscape pixels and a display matrix turning them 90
    # degrees clockwise (ffprobe: rotation=-90); players show a portrait picture.
    path = make_video(tmp_path / "phone.mp4", size=(160, 96), rotation=-90, painter=marker_painter)
    info = probe_video(str(path))
    assert (info.width, info.height, info.rotation) == (96, 160, 270)
    image = sample_frames(str(path))[0].image
    assert image.size == (96, 160)
    # Turned clockwise, the stored top-left corner is shown top-right.
    assert bright_corner(image) == "top-right"


def test_rotation_matches_ffmpeg_autorotate(tmp_path):
    for degrees in (-90, 90, 180):
        path = make_video(
            tmp_path / f"rot{degrees}.mp4",
            size=(160, 96),
            rotation=degrees,
            painter=marker_painter,
            duration_s=1.0,
        )
        png = tmp_path / f"rot{degrees}.png"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(path), "-frames:v", "1", str(png)],
            check=True,
        )
        with Image.open(png) as reference:
            ours = sample_frames(str(path))[0].image
            assert ours.size == reference.size
            assert bright_corner(ours) == bright_corner(reference)


def test_sound_track_is_mono_float32_at_the_requested_rate(scenes_mp4):
    sound = load_video_audio(str(scenes_mp4), sample_rate=48000)
    assert sound.dtype == np.float32
    assert len(sound) == pytest.approx(12 * 48000, rel=0.01)
    second = 48000

    def level(start_s: float) -> float:
        return float(
            np.sqrt(np.mean(sound[int(start_s * second) : int((start_s + 1) * second)] ** 2))
        )

    assert level(3.0) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)  # inside the tone
    assert level(7.0) < 0.01 and level(0.5) < 0.01  # silence around it
    window = sound[3 * second : 4 * second]
    peak_hz = np.argmax(np.abs(np.fft.rfft(window))) * second / len(window)
    assert peak_hz == pytest.approx(TONE_HZ, abs=2)


def test_sound_track_bounded_by_max_seconds(scenes_mp4):
    sound = load_video_audio(str(scenes_mp4), sample_rate=16000, max_seconds=3.0)
    assert len(sound) == 3 * 16000


def test_video_without_audio_gives_none(tmp_path):
    path = make_video(tmp_path / "silent.mp4", duration_s=2.0)
    assert load_video_audio(str(path)) is None
    assert probe_video(str(path)).has_audio is False


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_truncated_file_is_a_bad_file(tmp_path, suffix):
    codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    path = make_video(tmp_path / f"whole{suffix}", codec=codec, tone=(2.0, 5.0))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadFileError, match="truncated|not a readable video"):
        sample_frames(str(cut))


def test_truncated_file_with_index_first_is_a_bad_file(tmp_path):
    # moov at the front (+faststart, as web and phone exports do): the index promises
    # 12 s, the data stops half way; decoding what is there must not pass as complete.
    path = make_video(tmp_path / "whole.mp4", tone=(2.0, 5.0), faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadFileError, match="truncated video: its data stops at"):
        sample_frames(str(cut))
    with pytest.raises(BadFileError, match="truncated"):
        load_video_audio(str(cut))


@pytest.mark.parametrize(
    "content",
    [b"", b"just some notes, not a video\n" * 20, bytes(range(256)) * 64],
    ids=["empty", "text", "garbage"],
)
def test_garbage_is_a_bad_file(tmp_path, content):
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    for fn in (probe_video, sample_frames, load_video_audio):
        with pytest.raises(BadFileError):
            fn(str(path))


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate = 44100
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(BadFileError, match="no video stream"):
        sample_frames(str(path))


def test_results_are_picklable_for_the_isolated_worker(scenes_mp4):
    frames = pickle.loads(pickle.dumps(sample_frames(str(scenes_mp4), min_side=32)))
    assert isinstance(frames[0], Frame) and frames[0].image.size[1] == 32
    info = pickle.loads(pickle.dumps(probe_video(str(scenes_mp4))))
    assert info.duration_s == pytest.approx(12.0, abs=0.1)


def test_runs_inside_the_isolated_decoder(scenes_mp4):
    # The indexer runs these in worker processes with a memory cap (RLIMIT_AS): FFmpeg's
    # decoder threads and the sampled frames must fit its default limit.
    from search.decode.isolation import IsolatedDecoder

    with IsolatedDecoder() as isolation:
        frames = isolation.run(sample_frames, str(scenes_mp4), 1.0, 400, 0.35, 224)
        sound = isolation.run(load_video_audio, str(scenes_mp4), 48000)
        info = isolation.run(probe_video, str(scenes_mp4))
    assert [f.t_s for f in frames if f.scene_change] == pytest.approx(SCENE_CUTS_S, abs=0.3)
    assert len(sound) == pytest.approx(12 * 48000, rel=0.01)
    assert info.has_audio


def test_frame_at_returns_the_frame_shown_at_that_time(scenes_mp4, tmp_path):
    red = np.asarray(video.frame_at(str(scenes_mp4), 2.0))
    assert red[..., 0].mean() > 180 and red[..., 1:].mean() < 40
    square = np.asarray(video.frame_at(str(scenes_mp4), 6.05, min_side=120))
    assert square.mean() < 60 and square.max() > 200  # white square on black
    noise = np.asarray(video.frame_at(str(scenes_mp4), 10.0))
    assert noise.std() > 50
    rotated = make_video(
        tmp_path / "phone.mp4", size=(160, 96), rotation=-90, painter=marker_painter
    )
    assert video.frame_at(str(rotated), 1.0).size == (96, 160)


def test_demo_videos_are_as_documented():
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo" / "videos"
    sunset = sample_frames(str(demo / "sunset-then-night.webm"), min_side=64)
    assert [f.t_s for f in sunset if f.scene_change] == [5.0]
    assert (sunset[-1].t_s, sunset[-1].end_s) == (5.0, 8.0)  # the still night sky: one frame
    assert load_video_audio(str(demo / "sunset-then-night.webm")) is None
    ball = load_video_audio(str(demo / "bouncing-ball.mp4"))
    assert ball is not None and len(ball) == pytest.approx(6 * 48000, rel=0.01)
    birthday = load_video_audio(str(demo / "grandma-birthday.mp4"))
    assert birthday is not None and len(birthday) == pytest.approx(13 * 48000, rel=0.01)


def test_unknown_duration_switches_to_keyframes_when_long(tmp_path, monkeypatch):
    path = make_video(tmp_path / "gop.mkv", fps=10, gop=10)
    with av.open(str(path)) as container:
        keyframe_pts = {
            float(f.pts * f.time_base) for f in container.decode(video=0) if f.key_frame
        }
    monkeypatch.setattr(video, "_duration_s", lambda container, stream: None)
    monkeypatch.setattr(video, "FULL_DECODE_MAX_PIXELS", 160 * 120 * 45)  # 4.5 s of frames
    frames = sample_frames(str(path), rate=2.0, scene_threshold=None)
    times = [f.t_s for f in frames]
    # Every frame for the first ~4.5 s (the 0.5 s grid in the moving square), keyframes after.
    assert {4.0, 4.5} <= set(times)
    assert all(t in keyframe_pts for t in times if t > 5.0)
    assert times[-1] >= 10.0
