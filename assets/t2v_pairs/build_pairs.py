#!/usr/bin/env python3
"""Build assets/t2v_pairs/pairs.jsonl and heldout_ids.txt: short video ideas paired with video prompts.

Run from the repository root: `python assets/t2v_pairs/build_pairs.py`. Deterministic (no randomness beyond a
seeded `random.Random`), so the shipped files can be rebuilt and checked byte for byte.

Every phrase below was written by hand for Prompt Workbench. An idea is a subject, an action and (mostly) a place
or a time, in the words a casual user types; its video prompt restates the same subject, action and place in
fuller words (each idea's words appear in the fuller forms), then adds the motion, the camera, the light and a
style, in one of several sentence shapes. Checks at the end: every content word of the idea survives in the
prompt (the T2V tab's own lemmatised check), and the prompt is 25-45 words.

The held-out split is by SUBJECT: every idea about a held-out subject (the last subject of each category) is held
out, so the evaluation asks the adapter about subjects it never saw in training.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from workbench.t2v.principles import content_words, lemma  # noqa: E402

OUT = Path(__file__).resolve().parent

# category -> (subjects, places, motion extras)
# subject: (idea form, described form, [(idea action, described action, motion detail), ...])
# place: (idea form, described form)
DATA: dict[str, dict] = {
    "people": {
        "subjects": [
            ("a woman", "a young woman in a yellow raincoat", [
                ("dancing", "dancing with loose, happy steps", "her coat swinging as she turns"),
                ("reading a book", "reading a worn paperback book", "pages lifting gently in the breeze"),
                ("riding a bicycle", "riding an old blue bicycle", "wheels spinning and her scarf trailing behind"),
            ]),
            ("an old man", "an old man with a white beard and a flat cap", [
                ("feeding pigeons", "feeding a flock of grey pigeons", "birds flapping down around his feet"),
                ("playing chess", "playing chess on a wooden board", "his hand slowly moving a knight"),
                ("fishing", "fishing with a long bamboo rod", "the line flicking out over the water"),
            ]),
            ("a little girl", "a little girl in a red dress", [
                ("blowing bubbles", "blowing soap bubbles", "shimmering bubbles drifting up and popping"),
                ("jumping in puddles", "jumping in muddy puddles", "water splashing up around her boots"),
                ("flying a kite", "flying a bright striped kite", "the kite climbing and tugging at its string"),
            ]),
            ("a chef", "a focused chef in a white jacket", [
                ("tossing vegetables in a pan", "tossing sliced vegetables in a hot pan",
                 "flames flaring as the food flips in the air"),
                ("chopping onions", "chopping onions on a wooden board", "the knife moving in quick, even strokes"),
                ("plating a dessert", "plating a small chocolate dessert", "a spoon drawing a slow swirl of sauce"),
            ]),
            ("a street musician", "a street musician with a battered guitar case", [
                ("playing the violin", "playing the violin with closed eyes", "the bow sweeping across the strings"),
                ("singing", "singing to a small crowd", "passers-by slowing down to listen"),
                ("drumming on buckets", "drumming on upturned plastic buckets", "sticks blurring with each fast beat"),
            ]),
            ("a grandmother", "a smiling grandmother with silver hair", [
                ("knitting a scarf", "knitting a long green scarf", "needles clicking in a steady rhythm"),
                ("baking bread", "baking a loaf of crusty bread", "flour dusting the air as she kneads"),
                ("watering plants", "watering a row of potted plants", "a thin stream of water sparkling"),
            ]),
        ],
        "places": [
            ("in the park", "in a leafy city park"), ("at the train station", "on a busy platform at the train station"),
            ("on a rooftop", "on a flat city rooftop"), ("in the kitchen", "in a warm, cluttered kitchen"),
            ("at sunset", "as the sun sets behind rooftops, at sunset"), ("in the rain", "in the soft falling rain"),
            ("on the beach", "on a quiet sandy beach"), ("in a small village", "in a small stone village"),
        ],
    },
    "animals": {
        "subjects": [
            ("a dog", "a scruffy brown dog", [
                ("chasing a ball", "chasing a red rubber ball", "ears flapping as it runs"),
                ("swimming", "swimming with its head held high", "ripples spreading around its paddling legs"),
                ("catching a frisbee", "leaping to catch a frisbee", "its body stretching in mid-air"),
            ]),
            ("a cat", "a fluffy ginger cat", [
                ("chasing a butterfly", "chasing a white butterfly", "paws batting at the air"),
                ("sleeping", "sleeping curled in a tight ball", "its side rising and falling slowly"),
                ("climbing a tree", "climbing the trunk of a tree", "claws gripping the bark as it pulls up"),
            ]),
            ("a horse", "a chestnut horse with a long dark mane", [
                ("galloping", "galloping at full speed", "hooves kicking up clumps of earth"),
                ("grazing", "grazing on tall grass", "its tail swishing lazily"),
                ("jumping a fence", "jumping a low wooden fence", "mane flying as it clears the rail"),
            ]),
            ("an eagle", "a bald eagle with wide wings", [
                ("soaring", "soaring on warm air currents", "wingtips flexing as it circles"),
                ("catching a fish", "diving to catch a silver fish", "talons breaking the water surface"),
                ("landing on a branch", "landing on a dead branch", "wings flaring wide to slow down"),
            ]),
            ("a family of ducks", "a family of ducks, a mother and six ducklings", [
                ("crossing a road", "crossing a quiet road in a line", "the ducklings waddling to keep up"),
                ("swimming in a pond", "swimming across a still pond in a row", "small wakes trailing behind each one"),
                ("waddling", "waddling through the grass", "tiny wings flapping as they hurry"),
            ]),
            ("a sea turtle", "a green sea turtle with a patterned shell", [
                ("swimming over a reef", "swimming slowly over a coral reef", "its flippers sweeping in long strokes"),
                ("hatching", "hatching from a small white egg", "the shell cracking as it pushes out"),
                ("crawling to the sea", "crawling across the sand to the sea", "flippers dragging little trails"),
            ]),
        ],
        "places": [
            ("in a meadow", "in a wide green meadow full of wildflowers"), ("in the snow", "in fresh, deep snow"),
            ("at dawn", "in the first pale light at dawn"), ("in a forest", "in a misty pine forest"),
            ("by a river", "on the grassy bank by a river"), ("on a farm", "on a small family farm"),
            ("in slow motion", "captured in slow motion"), ("at night", "at night under a bright moon"),
        ],
    },
    "vehicles": {
        "subjects": [
            ("a red sports car", "a glossy red sports car", [
                ("racing", "racing at high speed", "its wheels blurring over the asphalt"),
                ("drifting around a corner", "drifting sideways around a tight corner", "smoke pouring from the tyres"),
                ("driving", "driving along an empty road", "the bodywork reflecting passing lights"),
            ]),
            ("a steam train", "a black steam train with brass fittings", [
                ("crossing a bridge", "crossing a tall stone bridge", "white steam billowing from its chimney"),
                ("leaving the station", "slowly leaving the station", "pistons pumping as the wheels start to turn"),
                ("winding through hills", "winding through green rolling hills", "carriages swaying behind it"),
            ]),
            ("a sailboat", "a small white sailboat", [
                ("sailing", "sailing with its sails full of wind", "the hull cutting through low waves"),
                ("racing other boats", "racing other boats toward a buoy", "spray bursting over the bow"),
                ("drifting", "drifting with a loose sail", "rocking gently on the swell"),
            ]),
            ("a hot air balloon", "a striped hot air balloon", [
                ("rising", "rising slowly into the sky", "the burner flame flaring under the canopy"),
                ("floating", "floating silently", "its basket turning gently in the wind"),
                ("landing in a field", "landing softly in a field", "the fabric sagging as it touches down"),
            ]),
            ("a motorcycle", "a vintage motorcycle with a chrome tank", [
                ("speeding", "speeding down a long straight", "the rider leaning low over the handlebars"),
                ("jumping a ramp", "jumping a dirt ramp", "dust spraying as the wheels leave the ground"),
                ("weaving through traffic", "weaving through slow traffic", "tail lights streaking past"),
            ]),
            ("a helicopter", "a yellow rescue helicopter", [
                ("hovering", "hovering low", "rotor wash flattening the grass below"),
                ("taking off", "taking off from a small pad", "its nose dipping as it lifts away"),
                ("flying over mountains", "flying over jagged snowy mountains", "its shadow racing across the slopes"),
            ]),
        ],
        "places": [
            ("on a coastal road", "on a winding coastal road above the sea"), ("in the desert", "in a flat open desert"),
            ("at night", "at night under orange streetlights"), ("in the city", "through the busy streets of the city"),
            ("at sunrise", "in warm golden light at sunrise"), ("in the fog", "in thick rolling fog"),
            ("over a lake", "over a calm blue lake"), ("in autumn", "among orange trees in autumn"),
        ],
    },
    "nature": {
        "subjects": [
            ("a waterfall", "a tall waterfall", [
                ("pouring into a pool", "pouring into a deep green pool", "white mist rising from the plunge"),
                ("flowing", "flowing over mossy rocks", "water tumbling in long silver ribbons"),
                ("freezing", "freezing into curtains of ice", "the last drips slowing to a stop"),
            ]),
            ("storm clouds", "dark, heavy storm clouds", [
                ("rolling in", "rolling in over the land", "their edges churning and folding"),
                ("flashing with lightning", "flashing with forks of lightning", "light pulsing inside the clouds"),
                ("gathering", "gathering and darkening the sky", "shadows sweeping over the ground"),
            ]),
            ("ocean waves", "tall ocean waves", [
                ("crashing on rocks", "crashing on black rocks", "spray exploding upward in white plumes"),
                ("rolling onto the shore", "rolling slowly onto the shore", "foam sliding up the sand and back"),
                ("breaking", "breaking in long curls", "the crest feathering in the wind"),
            ]),
            ("a field of sunflowers", "a wide field of tall sunflowers", [
                ("swaying in the wind", "swaying in the wind", "heads nodding together in waves"),
                ("turning toward the sun", "turning toward the sun", "petals glowing as they open"),
                ("blooming", "blooming in a time-lapse", "buds unfolding into bright yellow faces"),
            ]),
            ("a volcano", "a smoking volcano", [
                ("erupting", "erupting with bright orange lava", "ash clouds pushing high into the air"),
                ("glowing", "glowing from its crater", "thin lava rivers creeping down the slope"),
                ("steaming", "steaming quietly", "white plumes drifting off its rim"),
            ]),
            ("cherry blossoms", "pink cherry blossoms on old branches", [
                ("falling", "falling petal by petal", "petals spinning slowly to the ground"),
                ("blowing in the breeze", "blowing in a light breeze", "branches bending softly"),
                ("opening", "opening in a time-lapse", "each flower spreading its petals"),
            ]),
        ],
        "places": [
            ("in the mountains", "high in the rugged mountains"), ("at sunset", "lit orange and pink at sunset"),
            ("in a jungle", "deep in a humid green jungle"), ("at night", "at night under a sky full of stars"),
            ("in spring", "on a fresh morning in spring"), ("on an island", "on a remote tropical island"),
            ("in winter", "on a cold, clear day in winter"), ("in a valley", "in a wide quiet valley"),
        ],
    },
    "food": {
        "subjects": [
            ("a pizza", "a wood-fired pizza with bubbling cheese", [
                ("coming out of the oven", "coming out of a brick oven on a long peel", "steam curling off the crust"),
                ("being sliced", "being sliced into eight pieces", "cheese stretching in long strings"),
                ("spinning", "spinning slowly on a turntable", "basil leaves glistening with oil"),
            ]),
            ("coffee", "fresh black coffee", [
                ("being poured", "being poured into a white cup", "a dark stream swirling as it fills"),
                ("brewing", "brewing in a glass pour-over", "drops falling one by one into the pot"),
                ("steaming", "steaming in a ceramic mug", "thin wisps of steam rising and curling"),
            ]),
            ("a chocolate cake", "a rich three-layer chocolate cake", [
                ("being frosted", "being frosted with a spatula", "glossy icing spreading in smooth arcs"),
                ("melting", "melting under warm sauce", "chocolate dripping slowly down its sides"),
                ("being cut", "being cut with a silver knife", "a moist slice falling onto the plate"),
            ]),
            ("ramen", "a steaming bowl of ramen", [
                ("being served", "being served on a wooden counter", "broth rippling as the bowl settles"),
                ("being lifted with chopsticks", "being lifted with chopsticks", "noodles sliding and dripping broth"),
                ("simmering", "simmering in a large pot", "bubbles rising through the golden broth"),
            ]),
            ("fresh fruit", "fresh fruit, strawberries, oranges and kiwi", [
                ("splashing into water", "splashing into clear water", "bubbles bursting around each piece"),
                ("being cut", "being cut on a marble board", "juice beading on the fresh slices"),
                ("tumbling", "tumbling onto a table", "pieces rolling and bouncing apart"),
            ]),
            ("pancakes", "a tall stack of fluffy pancakes", [
                ("flipping in a pan", "flipping in a hot pan", "batter sizzling as they land"),
                ("being drizzled with syrup", "being drizzled with maple syrup", "syrup running down the stack"),
                ("stacking", "stacking one by one on a plate", "butter sliding off the top"),
            ]),
        ],
        "places": [
            ("in a restaurant", "in a busy little restaurant"), ("on a table", "on a rustic wooden table"),
            ("in the morning", "in soft light in the morning"), ("in a cafe", "in a small corner cafe"),
            ("at a market", "at a crowded outdoor market"), ("in close-up", "framed in an extreme close-up"),
            ("in a kitchen", "in a bright home kitchen"), ("at a picnic", "at a picnic on a checked blanket"),
        ],
    },
    "sports": {
        "subjects": [
            ("a surfer", "a surfer in a black wetsuit", [
                ("riding a wave", "riding a large curling wave", "spray fanning off the board"),
                ("paddling out", "paddling out past the breakers", "arms pulling through the water"),
                ("wiping out", "wiping out off the board", "the wave crashing over in white foam"),
            ]),
            ("a basketball player", "a tall basketball player in a blue jersey", [
                ("dunking", "dunking the ball hard", "the rim shaking as he hangs on it"),
                ("dribbling", "dribbling past a defender", "the ball bouncing low and fast"),
                ("shooting a free throw", "shooting a free throw", "the ball arcing toward the hoop"),
            ]),
            ("a skier", "a skier in a bright orange jacket", [
                ("racing downhill", "racing downhill through the gates", "snow spraying at every turn"),
                ("jumping", "jumping off a snow kick", "skis crossing in mid-air"),
                ("carving turns", "carving long smooth turns", "powder rising in a fine cloud"),
            ]),
            ("a runner", "a lean runner in a white vest", [
                ("sprinting", "sprinting toward the finish line", "arms pumping with every stride"),
                ("jogging", "jogging at an easy pace", "breath showing in the cold air"),
                ("crossing the finish line", "crossing the finish line", "the tape breaking across her chest"),
            ]),
            ("a soccer team", "a soccer team in red shirts", [
                ("celebrating a goal", "celebrating a goal together", "players jumping and hugging"),
                ("training", "training with quick passing drills", "the ball zipping between players"),
                ("scoring a goal", "scoring a goal from a corner kick", "the net bulging as the ball hits it"),
            ]),
            ("a rock climber", "a rock climber with a chalk bag", [
                ("climbing a cliff", "climbing a steep cliff", "fingers searching for the next hold"),
                ("reaching the top", "reaching the top of the route", "arms raised against the sky"),
                ("rappelling", "rappelling down on a rope", "boots pushing off the wall"),
            ]),
        ],
        "places": [
            ("at the olympics", "in a packed stadium at the olympics"), ("in the rain", "in heavy driving rain"),
            ("at sunset", "under an orange sky at sunset"), ("in a stadium", "in a huge floodlit stadium"),
            ("in slow motion", "shown in slow motion"), ("on a mountain", "high on a rocky mountain"),
            ("at night", "at night under bright lights"), ("in the summer", "on a hot day in the summer"),
        ],
    },
    "city": {
        "subjects": [
            ("a crowd", "a crowd of commuters with umbrellas and bags", [
                ("crossing the street", "crossing the wide street", "people flowing past each other"),
                ("waiting for a bus", "waiting for a bus at the stop", "heads turning as it approaches"),
                ("walking", "walking in every direction", "a blur of coats and footsteps"),
            ]),
            ("a yellow taxi", "a yellow taxi with a glowing roof sign", [
                ("driving through traffic", "driving through dense traffic", "brake lights flickering around it"),
                ("stopping", "stopping at the curb", "its door swinging open"),
                ("turning a corner", "turning a tight corner", "wet tyres hissing on the road"),
            ]),
            ("skyscrapers", "glass skyscrapers", [
                ("reflecting the clouds", "reflecting the passing clouds", "clouds sliding across the glass"),
                ("lighting up", "lighting up window by window", "lights switching on in rows"),
                ("towering", "towering over the streets", "tiny cars moving far below"),
            ]),
            ("a tram", "an old green tram", [
                ("rattling down a hill", "rattling down a steep hill", "its bell ringing as it sways"),
                ("stopping at a station", "stopping at a small station", "passengers stepping on and off"),
                ("passing shops", "passing a row of shops", "window displays sliding by"),
            ]),
            ("a street market", "a lively street market with striped stalls", [
                ("opening", "opening for the day", "vendors pulling back the covers"),
                ("bustling", "bustling with shoppers", "hands passing coins and bags"),
                ("closing", "closing for the night", "lamps going dark one by one"),
            ]),
            ("a neon sign", "a flickering pink neon sign", [
                ("buzzing", "buzzing above a doorway", "the letters blinking on and off"),
                ("glowing", "glowing over the pavement", "its light shimmering in puddles"),
                ("flickering", "flickering in a narrow alley", "moths circling the tubes"),
            ]),
        ],
        "places": [
            ("in tokyo", "in the dense streets of tokyo"), ("at rush hour", "at rush hour on a weekday"),
            ("in the rain", "in steady rain on wet streets"), ("at night", "at night among bright lights"),
            ("in new york", "in downtown new york"), ("in winter", "on a snowy evening in winter"),
            ("downtown", "downtown between tall buildings"), ("at dusk", "in blue light at dusk"),
        ],
    },
    "fantasy": {
        "subjects": [
            ("a dragon", "a huge dragon with emerald scales", [
                ("flying over a castle", "flying over a stone castle", "its wings beating slow and heavy"),
                ("breathing fire", "breathing a stream of fire", "flames rolling out in a bright wave"),
                ("sleeping on gold", "sleeping on a pile of gold coins", "smoke curling from its nostrils"),
            ]),
            ("a wizard", "an old wizard in a deep blue robe", [
                ("casting a spell", "casting a spell with a gnarled staff", "sparks spiralling from its tip"),
                ("reading a spellbook", "reading a glowing spellbook", "pages turning by themselves"),
                ("summoning lightning", "summoning lightning from the clouds", "bolts striking the ground around him"),
            ]),
            ("a unicorn", "a white unicorn with a silver horn", [
                ("galloping", "galloping through tall grass", "its mane flowing like silk"),
                ("drinking from a stream", "drinking from a clear stream", "ripples spreading from its muzzle"),
                ("rearing up", "rearing up on its hind legs", "light glinting off its horn"),
            ]),
            ("a fairy", "a tiny fairy with glowing wings", [
                ("dancing on a flower", "dancing on a flower petal", "glittering dust falling from her wings"),
                ("flying", "flying in quick zigzags", "a trail of light following her"),
                ("lighting lanterns", "lighting lanterns one by one", "each lantern flaring to life"),
            ]),
            ("a knight", "a knight in battered silver armour", [
                ("riding into battle", "riding into battle on a black horse", "a banner snapping in the wind"),
                ("drawing a sword", "drawing a long sword", "the blade catching the light"),
                ("kneeling", "kneeling before a throne", "his cape settling around him"),
            ]),
            ("a giant robot", "a giant rusty robot", [
                ("walking through a forest", "walking through a forest", "trees bending as it steps"),
                ("waking up", "waking up after centuries", "moss falling from its moving joints"),
                ("lifting a boulder", "lifting a mossy boulder", "gears turning in its arms"),
            ]),
        ],
        "places": [
            ("in an enchanted forest", "in an enchanted forest of glowing mushrooms"),
            ("on a floating island", "on a floating island above the clouds"),
            ("at midnight", "at midnight under two moons"), ("in a crystal cave", "in a crystal cave full of light"),
            ("in a ruined city", "in a ruined city overgrown with vines"), ("in the clouds", "high in the clouds"),
            ("under a full moon", "under a full moon"), ("in a misty valley", "in a misty valley"),
        ],
    },
    "abstract": {
        "subjects": [
            ("colourful ink", "colourful ink in red, blue and gold", [
                ("swirling in water", "swirling in clear water", "clouds of colour blooming and folding"),
                ("spreading", "spreading in thin branches", "colours bleeding into each other"),
                ("dripping", "dripping in slow drops", "each drop bursting into tendrils"),
            ]),
            ("geometric shapes", "glossy geometric shapes, cubes and spheres", [
                ("morphing", "morphing into one another", "edges melting and reforming"),
                ("rotating", "rotating in perfect sync", "reflections sliding over their faces"),
                ("bouncing", "bouncing in a steady rhythm", "shadows stretching and shrinking"),
            ]),
            ("liquid metal", "a pool of liquid metal", [
                ("flowing", "flowing like mercury", "its mirror surface rippling"),
                ("forming a sphere", "forming a perfect sphere", "droplets pulling back into the whole"),
                ("rippling", "rippling in rings", "highlights racing across the surface"),
            ]),
            ("particles of light", "millions of tiny particles of light", [
                ("exploding", "exploding outward", "sparks scattering in every direction"),
                ("forming a galaxy", "forming a spiral galaxy", "streams of light curling inward"),
                ("floating", "floating like dust", "drifting slowly through the dark"),
            ]),
            ("paint", "thick acrylic paint", [
                ("pouring onto a canvas", "pouring onto a white canvas", "colours spreading into cells"),
                ("splashing", "splashing upward", "droplets freezing in the air"),
                ("mixing", "mixing in swirling bands", "two colours marbling together"),
            ]),
            ("smoke", "soft coloured smoke", [
                ("curling", "curling in slow spirals", "wisps folding over each other"),
                ("drifting", "drifting across the frame", "thin trails breaking apart"),
                ("twisting into shapes", "twisting into shifting shapes", "forms appearing and dissolving"),
            ]),
        ],
        "places": [
            ("on a black background", "on a plain black background"), ("in slow motion", "shown in slow motion"),
            ("in zero gravity", "in zero gravity"), ("in a white void", "in an endless white void"),
            ("under neon light", "under pink and blue neon light"), ("in macro", "filmed in macro detail"),
            ("in a loop", "in a seamless loop"), ("in pastel colours", "in soft pastel colours"),
        ],
    },
}

CAMERAS = [
    "slow dolly-in shot", "smooth tracking shot", "low-angle handheld shot", "slowly circling aerial drone shot",
    "static wide shot", "gentle panning shot", "shallow-focus close-up", "rising crane shot",
    "slow zoom-out medium shot", "steady orbiting shot", "eye-level tracking shot", "overhead top-down shot",
]
LIGHTS = [
    "soft natural light", "warm golden hour light", "cool blue ambient light", "dramatic side lighting",
    "bright midday sunlight", "gentle diffused light", "moody low light with deep shadows",
    "backlit with a warm glow", "crisp morning light", "soft volumetric light",
]
STYLES = [
    "cinematic, realistic detail", "photorealistic, 4k", "documentary style", "cinematic film look",
    "vivid, highly detailed", "smooth, realistic motion", "shot on 35mm film", "natural colours, realistic",
]
# Lights that do not contradict a time of day or weather named in the idea (no "midday sunlight" at night).
NEUTRAL_LIGHTS = ["dramatic side lighting", "soft volumetric light", "moody light with deep shadows",
                  "glowing highlights and soft shadows"]
TIMED = ("night", "midnight", "moon", "dusk", "dawn", "sunset", "sunrise", "morning", "rain", "fog", "snow",
         "winter", "neon", "rush hour")

# Sentence shapes: S subject, A action, P place (may be empty), M motion detail, C camera, L light, Y style.
SHAPES = [
    "{S} {A}{P}, {M}. {C}, {L}, {Y}.",
    "{Cc} of {S} {A}{P}. {Mc}, {L}, {Y}.",
    "{S} {A}{P}, with {M}. {C}, {L}, {Y}.",
    "{Cc}: {S} {A}{P}, {M}, {L}, {Y}.",
]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


EXTRAS = ["the background softly out of focus", "subtle movement in the background",
          "the scene unfolding over a few calm seconds", "fine texture visible in every frame"]


def compose(rng: random.Random, subject: str, action: str, place: str, motion: str, extra: bool = False) -> str:
    shape = rng.choice(SHAPES)
    timed = any(t in place for t in TIMED)
    camera, light, style = rng.choice(CAMERAS), rng.choice(NEUTRAL_LIGHTS if timed else LIGHTS), rng.choice(STYLES)
    fill = {"S": subject, "A": action, "P": (" " + place) if place else "", "M": motion, "Mc": cap(motion),
            "C": cap(camera), "Cc": cap(camera), "L": light,
            "Y": (rng.choice(EXTRAS) + ", " + style) if extra else style}
    text = shape.format(**fill)
    return cap(text[0].lower() + text[1:]) if shape.startswith("{S}") else text


def keeps_words(idea: str, prompt: str) -> list[str]:
    have = {lemma(w) for w in content_words(prompt)}
    return [w for w in content_words(idea) if lemma(w) not in have]


def build() -> tuple[list[dict], list[str]]:
    rng = random.Random(21)
    rows: list[dict] = []
    held: list[str] = []
    n = 0
    for category, data in DATA.items():
        subjects, places = data["subjects"], data["places"]
        for si, (s_idea, s_full, actions) in enumerate(subjects):
            heldout_subject = si == len(subjects) - 1
            for ai, (a_idea, a_full, motion) in enumerate(actions):
                # each action: once without a place, then with three different places
                picks = [None] + rng.sample(range(len(places)), 3)
                for pi in picks:
                    p_idea, p_full = places[pi] if pi is not None else ("", "")
                    idea = " ".join(x for x in (s_idea, a_idea, p_idea) if x)
                    for attempt in range(20):
                        prompt = compose(rng, s_full, a_full, p_full, motion, extra=attempt >= 10)
                        words = len(prompt.split())
                        if 25 <= words <= 45:
                            break
                    else:
                        raise SystemExit(f"no 25-45 word prompt for {idea!r} (last: {words} words)")
                    missing = keeps_words(idea, prompt)
                    if missing:
                        raise SystemExit(f"{idea!r}: prompt drops {missing}: {prompt}")
                    n += 1
                    pid = f"v{n:04d}"
                    rows.append({"id": pid, "idea": idea, "prompt": prompt, "category": category})
                    if heldout_subject:
                        held.append(pid)
    return rows, held


def main() -> int:
    rows, held = build()
    ideas = [r["idea"] for r in rows]
    if len(set(ideas)) != len(ideas):
        raise SystemExit("duplicate ideas")
    with open(OUT / "pairs.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (OUT / "heldout_ids.txt").write_text(
        "# held out by subject (the last subject of each category): never trained on, evaluation only\n"
        + "\n".join(held) + "\n", encoding="utf-8")
    lengths = [len(r["prompt"].split()) for r in rows]
    print(f"{len(rows)} pairs, {len(held)} held out, prompt words {min(lengths)}-{max(lengths)} "
          f"(mean {sum(lengths) / len(lengths):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
