"""Write assets/captions/captions.txt: short captions of sounds and scenes for the CLIP<->CLAP
bridge (search/bridge.py fits a linear map on both text towers' embeddings of these).

Every word list below was written for Trove (no third-party data set), so the output is
licence-clean. The output is deterministic: run `python assets/captions/make_captions.py`
after editing a list and commit both files; a changed caption set refits cached bridges.
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).with_name("captions.txt")
TARGET = 3000
SEED = 0

# Sound sources with what they do, across nature, animals, people, home, city, machines, music.
SOUND_EVENTS = """
a dog barking; a dog growling; a puppy whining; a cat meowing; a cat purring; a cow mooing;
a horse neighing; a sheep bleating; a goat bleating; a pig grunting; a rooster crowing;
hens clucking; a duck quacking; geese honking; an owl hooting; a crow cawing;
birds singing; a bird chirping; seagulls crying; pigeons cooing; a woodpecker drumming;
crickets chirping; frogs croaking; bees buzzing; a mosquito whining; a fly buzzing;
a lion roaring; an elephant trumpeting; a wolf howling; a monkey screeching;
rain falling; heavy rain pouring; rain on a tin roof; rain on a window; drizzle;
thunder rumbling; a thunderclap; wind blowing; wind howling; leaves rustling;
waves crashing; gentle waves lapping; a stream babbling; a waterfall roaring;
water dripping; a river flowing; a fire crackling; hail hitting the ground; snow crunching;
a baby crying; a baby laughing; children laughing; children playing; a crowd cheering;
people applauding; a man speaking; a woman speaking; people talking; a crowd murmuring;
a man shouting; a woman singing; a choir singing; someone whistling; someone coughing;
someone sneezing; someone snoring; someone laughing; footsteps on gravel;
footsteps on a wooden floor; high heels clicking; someone running; someone clapping;
someone typing on a keyboard; a mouse clicking; a door slamming; a door creaking;
a door knocking; a doorbell ringing; keys jingling; a drawer closing; a zipper;
dishes clattering; a kettle whistling; water boiling; food sizzling in a pan;
a microwave beeping; a blender whirring; a vacuum cleaner; a washing machine spinning;
a toilet flushing; a shower running; a tap running; a clock ticking; an alarm clock ringing;
a phone ringing; a phone vibrating; a camera shutter clicking; paper rustling;
pages turning; scissors cutting; a pen scribbling; glass breaking; a bottle popping;
ice cubes clinking; a spoon stirring in a cup; a chair scraping; a fan humming;
a car engine starting; a car passing by; a car horn honking; tires screeching;
a motorcycle revving; a truck rumbling; a bus braking; a train passing; a train horn;
a tram bell; a subway train arriving; an airplane flying overhead; a helicopter;
a jet taking off; a boat engine; a ship horn; a bicycle bell; a siren wailing;
an ambulance siren; a police siren; a fire alarm; church bells ringing; a bell tolling;
a gong; traffic noise; a jackhammer; a drill; a hammer hitting nails; a chainsaw;
a lawn mower; a saw cutting wood; an electric saw; a welding torch; a printer printing;
a fireworks display; a gunshot; an explosion; a balloon popping; a ball bouncing;
a tennis match; a skateboard rolling; a piano playing; a guitar strumming;
an acoustic guitar; an electric guitar; a violin playing; a cello; a flute; a trumpet;
a saxophone; drums playing; a drum roll; a harp; an accordion; bagpipes; a harmonica;
an organ playing; a music box; a synthesizer; a marching band; an orchestra;
a rock band; jazz music; classical music; techno music; a lullaby; a pure tone;
a beep; a buzzer; white noise; static on a radio; a dial tone; a heartbeat;
breathing; a cough in a quiet room; silence in a large hall
"""

SCENES = """
in a forest; in a park; on a beach; at the seaside; in the mountains; in a meadow;
in a garden; on a farm; in a barn; in a jungle; in the desert; by a lake; by a river;
in a cave; in the snow; in a busy street; in a quiet street; at a train station;
at an airport; in a subway; on a bus; in a car; on a boat; in a harbour; at a market;
in a shopping mall; in a restaurant; in a cafe; in a bar; in a kitchen; in a living room;
in a bedroom; in a bathroom; in an office; in a classroom; in a library; in a church;
in a stadium; at a concert; at a party; at a wedding; in a playground; in a gym;
in a swimming pool; in a hospital; in a factory; on a construction site; in a workshop;
in a parking garage; in a tunnel; on a bridge; in a city square; at a campsite;
in a tent; in a school hallway; in an empty warehouse; in a recording studio
"""

TIMES = """
at night; in the morning; at dawn; at dusk; in the afternoon; during a storm;
on a rainy day; on a windy day; in winter; in summer; in the distance; close up;
far away; from inside a room; through a wall; on a loudspeaker
"""

QUALITIES = """
loud; quiet; soft; distant; muffled; echoing; repeated; continuous; short; sudden;
rhythmic; faint; sharp; deep; high pitched; low; steady; intermittent
"""

TEMPLATES = (
    "{event}",
    "the sound of {event}",
    "{event} {scene}",
    "the sound of {event} {scene}",
    "{event} {time}",
    "{event} {scene} {time}",
    "{event} and {event2}",
    "{event} and {event2} {scene}",
    "a {quality} sound of {event}",
    "a recording of {event} {scene}",
    "{event} with {event2} in the background",
    "ambient sound {scene}",
    "a photo of {event} {scene}",
)


def words(block: str) -> list[str]:
    return [w.strip() for w in block.replace("\n", " ").split(";") if w.strip()]


def generate(target: int = TARGET, seed: int = SEED) -> list[str]:
    """Every event alone and as 'the sound of', then templated combinations up to `target`."""
    events, scenes, times, qualities = (
        words(SOUND_EVENTS),
        words(SCENES),
        words(TIMES),
        words(QUALITIES),
    )
    rng = random.Random(seed)
    captions = dict.fromkeys(events)
    captions.update(dict.fromkeys(f"the sound of {e}" for e in events))
    captions.update(dict.fromkeys(f"ambient sound {s}" for s in scenes))
    while len(captions) < target:
        event, event2 = rng.sample(events, 2)
        caption = rng.choice(TEMPLATES).format(
            event=event,
            event2=event2,
            scene=rng.choice(scenes),
            time=rng.choice(times),
            quality=rng.choice(qualities),
        )
        captions[caption] = None
    return list(captions)


def main() -> None:
    captions = generate()
    OUT.write_text("\n".join(captions) + "\n", encoding="utf-8")
    print(f"wrote {len(captions)} captions to {OUT}")


if __name__ == "__main__":
    main()
