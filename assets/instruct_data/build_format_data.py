#!/usr/bin/env python3
"""Build the format-constraint data (stdlib only): format_train.jsonl and format_probes.jsonl.

The content below (list topics with their items, short facts, sentences to repeat) was written by hand for
Prompt Workbench. Each piece of content is paired with format constraints in a fixed rotation (no randomness),
so the files rebuild byte for byte:

    python assets/instruct_data/build_format_data.py

Constraints (the `check` field says how an answer is checked; workbench/shift/format_probes.py runs it):
  upper       all capital letters              {"kind": "upper"}
  lower       all lowercase letters            {"kind": "lower"}
  lines       N items, one per line            {"kind": "lines", "n": N}
  bullets     N items as "-" bullets           {"kind": "bullets", "n": N}
  starts      start the answer with a phrase   {"kind": "starts", "prefix": "..."}
  max_words   N words or fewer                 {"kind": "max_words", "n": N}
  repeat      repeat a text exactly            {"kind": "repeat", "text": "..."}

Training items and held-out probes share no content (topics, facts, sentences) and the probes use some
wordings and start phrases that never occur in training, so a probe tests the constraint, not recall.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------- content (hand-written)

# (topic as it reads after "Name three ...", items)
TRAIN_TOPICS = [
    ("colours of the rainbow", ["Red", "Orange", "Yellow", "Green", "Blue"]),
    ("planets in our solar system", ["Mercury", "Venus", "Earth", "Mars", "Jupiter"]),
    ("kitchen tools", ["Knife", "Spoon", "Whisk", "Ladle", "Grater"]),
    ("musical instruments", ["Piano", "Guitar", "Violin", "Drum", "Flute"]),
    ("vegetables", ["Carrot", "Potato", "Onion", "Pea", "Cabbage"]),
    ("ocean animals", ["Shark", "Dolphin", "Octopus", "Crab", "Whale"]),
    ("things found in a classroom", ["Desk", "Chair", "Board", "Pencil", "Book"]),
    ("types of weather", ["Rain", "Snow", "Wind", "Fog", "Hail"]),
    ("shapes", ["Circle", "Square", "Triangle", "Oval", "Star"]),
    ("body parts", ["Head", "Arm", "Leg", "Hand", "Foot"]),
    ("months of the year", ["January", "February", "March", "April", "May"]),
    ("countries in Europe", ["France", "Spain", "Italy", "Germany", "Poland"]),
    ("things you wear in winter", ["Coat", "Scarf", "Gloves", "Hat", "Boots"]),
    ("birds", ["Robin", "Eagle", "Owl", "Sparrow", "Parrot"]),
    ("insects", ["Ant", "Bee", "Beetle", "Butterfly", "Fly"]),
    ("breakfast foods", ["Toast", "Eggs", "Cereal", "Porridge", "Pancakes"]),
    ("ways to travel", ["Car", "Train", "Bus", "Bicycle", "Plane"]),
    ("tools in a toolbox", ["Hammer", "Screwdriver", "Wrench", "Saw", "Pliers"]),
    ("flowers", ["Rose", "Tulip", "Daisy", "Lily", "Sunflower"]),
    ("jobs in a hospital", ["Doctor", "Nurse", "Surgeon", "Porter", "Pharmacist"]),
    ("things in a bathroom", ["Sink", "Towel", "Soap", "Mirror", "Toothbrush"]),
    ("wild cats", ["Lion", "Tiger", "Leopard", "Cheetah", "Jaguar"]),
    ("board games", ["Chess", "Checkers", "Monopoly", "Scrabble", "Backgammon"]),
    ("school subjects", ["Maths", "History", "Science", "Art", "Music"]),
    ("trees", ["Oak", "Pine", "Birch", "Maple", "Willow"]),
    ("dairy products", ["Milk", "Cheese", "Butter", "Yogurt", "Cream"]),
    ("parts of a computer", ["Keyboard", "Mouse", "Screen", "Processor", "Memory"]),
    ("things in the sky", ["Sun", "Moon", "Stars", "Clouds", "Birds"]),
    ("baked goods", ["Bread", "Cake", "Muffin", "Cookie", "Croissant"]),
    ("farm machines", ["Tractor", "Plough", "Harvester", "Baler", "Trailer"]),
    ("citrus fruits", ["Lemon", "Lime", "Orange", "Grapefruit", "Mandarin"]),
    ("reptiles", ["Snake", "Lizard", "Turtle", "Crocodile", "Gecko"]),
    ("things you can read", ["Book", "Newspaper", "Magazine", "Letter", "Map"]),
    ("herbs", ["Basil", "Mint", "Parsley", "Thyme", "Rosemary"]),
    ("rooms in a house", ["Kitchen", "Bedroom", "Bathroom", "Hall", "Attic"]),
    ("metals", ["Iron", "Copper", "Gold", "Silver", "Tin"]),
    ("things at a playground", ["Swing", "Slide", "Seesaw", "Sandpit", "Roundabout"]),
    ("winter sports", ["Skiing", "Skating", "Snowboarding", "Curling", "Sledding"]),
    ("desserts", ["Ice cream", "Pudding", "Pie", "Jelly", "Trifle"]),
    ("garden tools", ["Spade", "Rake", "Hoe", "Shears", "Trowel"]),
    ("sea birds", ["Gull", "Puffin", "Albatross", "Gannet", "Tern"]),
    ("containers", ["Box", "Jar", "Bag", "Bottle", "Basket"]),
    ("colours of fruit", ["Red", "Yellow", "Green", "Purple", "Orange"]),
    ("things that use electricity", ["Lamp", "Fridge", "Kettle", "Television", "Fan"]),
    ("nuts", ["Almond", "Walnut", "Hazelnut", "Cashew", "Pecan"]),
]

HELDOUT_TOPICS = [
    ("toys", ["Ball", "Kite", "Doll", "Yo-yo", "Puzzle"]),
    ("things in an office", ["Stapler", "Printer", "Desk", "Phone", "Folder"]),
    ("summer fruits", ["Strawberry", "Cherry", "Peach", "Melon", "Plum"]),
    ("mountains", ["Everest", "Kilimanjaro", "Mont Blanc", "Denali", "Fuji"]),
    ("things you take camping", ["Tent", "Torch", "Sleeping bag", "Stove", "Map"]),
    ("card games", ["Poker", "Snap", "Rummy", "Solitaire", "Bridge"]),
    ("sweet drinks", ["Lemonade", "Cola", "Hot chocolate", "Milkshake", "Juice"]),
    ("parts of a bicycle", ["Wheel", "Chain", "Pedal", "Saddle", "Brake"]),
    ("kinds of boat", ["Canoe", "Yacht", "Ferry", "Raft", "Barge"]),
    ("things in a park", ["Bench", "Pond", "Path", "Fountain", "Tree"]),
]

# (question, short answer of 1-3 words, answer as one short sentence)
TRAIN_FACTS = [
    ("What is the capital of Italy?", "Rome", "The capital of Italy is Rome."),
    ("How many legs does a spider have?", "Eight", "A spider has eight legs."),
    ("What colour is the sky on a clear day?", "Blue", "The sky is blue on a clear day."),
    ("Which animal is known as the king of the jungle?", "The lion", "The lion is known as the king of the jungle."),
    ("What do bees make?", "Honey", "Bees make honey."),
    ("How many days are in a week?", "Seven", "There are seven days in a week."),
    ("What is frozen water called?", "Ice", "Frozen water is called ice."),
    ("Which planet is closest to the Sun?", "Mercury", "Mercury is the planet closest to the Sun."),
    ("What is the largest ocean on Earth?", "The Pacific", "The Pacific is the largest ocean on Earth."),
    ("What gas do plants take in from the air?", "Carbon dioxide", "Plants take in carbon dioxide from the air."),
    ("How many hours are in a day?", "Twenty-four", "There are twenty-four hours in a day."),
    ("What is the capital of Japan?", "Tokyo", "The capital of Japan is Tokyo."),
    ("What do cows drink?", "Water", "Cows drink water."),
    ("Which season comes after winter?", "Spring", "Spring comes after winter."),
    ("What is the opposite of hot?", "Cold", "The opposite of hot is cold."),
    ("How many wheels does a bicycle have?", "Two", "A bicycle has two wheels."),
    ("What is the main language spoken in Brazil?", "Portuguese", "The main language spoken in Brazil is Portuguese."),
    ("What do caterpillars turn into?", "Butterflies", "Caterpillars turn into butterflies."),
    ("What is the boiling point of water in Celsius?", "100 degrees", "Water boils at 100 degrees Celsius."),
    ("Which organ pumps blood around the body?", "The heart", "The heart pumps blood around the body."),
    ("What is the tallest animal?", "The giraffe", "The giraffe is the tallest animal."),
    ("How many sides does a triangle have?", "Three", "A triangle has three sides."),
    ("What is the capital of Spain?", "Madrid", "The capital of Spain is Madrid."),
    ("What does a thermometer measure?", "Temperature", "A thermometer measures temperature."),
    ("What is the colour of a ripe banana?", "Yellow", "A ripe banana is yellow."),
    ("Which star is at the centre of our solar system?", "The Sun", "The Sun is at the centre of our solar system."),
    ("What is the largest planet in our solar system?", "Jupiter", "Jupiter is the largest planet in our solar system."),
    ("What do you call a baby dog?", "A puppy", "A baby dog is called a puppy."),
    ("How many minutes are in an hour?", "Sixty", "There are sixty minutes in an hour."),
    ("What is the capital of Egypt?", "Cairo", "The capital of Egypt is Cairo."),
    ("What do fish use to breathe?", "Gills", "Fish use gills to breathe."),
    ("Which metal is liquid at room temperature?", "Mercury", "Mercury is liquid at room temperature."),
    ("What is the opposite of up?", "Down", "The opposite of up is down."),
    ("What do pandas mostly eat?", "Bamboo", "Pandas mostly eat bamboo."),
    ("How many continents are on Earth?", "Seven", "There are seven continents on Earth."),
    ("What is the capital of Canada?", "Ottawa", "The capital of Canada is Ottawa."),
    ("Which bird is a symbol of peace?", "The dove", "The dove is a symbol of peace."),
    ("What is the hardest natural material?", "Diamond", "Diamond is the hardest natural material."),
    ("What do you call a baby cat?", "A kitten", "A baby cat is called a kitten."),
    ("How many months are in a year?", "Twelve", "There are twelve months in a year."),
    ("What is the capital of Australia?", "Canberra", "The capital of Australia is Canberra."),
    ("Which animal has a trunk?", "The elephant", "The elephant has a trunk."),
    ("What is the colour of grass?", "Green", "Grass is green."),
    ("What do you use to write on a blackboard?", "Chalk", "You use chalk to write on a blackboard."),
    ("What is the longest river in Africa?", "The Nile", "The Nile is the longest river in Africa."),
    ("How many players are in a football team on the pitch?", "Eleven", "A football team has eleven players on the pitch."),
    ("What is the capital of Kenya?", "Nairobi", "The capital of Kenya is Nairobi."),
    ("What shape has four equal sides?", "A square", "A square has four equal sides."),
    ("What do you call water falling from clouds?", "Rain", "Water falling from clouds is called rain."),
    ("Which animal is famous for its black and white stripes?", "The zebra", "The zebra is famous for its black and white stripes."),
    ("What is the capital of Norway?", "Oslo", "The capital of Norway is Oslo."),
    ("What instrument has black and white keys?", "The piano", "The piano has black and white keys."),
    ("What is the freezing point of water in Celsius?", "Zero degrees", "Water freezes at zero degrees Celsius."),
    ("Which sense do we use our nose for?", "Smell", "We use our nose to smell."),
    ("What do hens lay?", "Eggs", "Hens lay eggs."),
    ("What is the capital of Greece?", "Athens", "The capital of Greece is Athens."),
    ("How many legs does an insect have?", "Six", "An insect has six legs."),
    ("What do you call a house made of snow blocks?", "An igloo", "A house made of snow blocks is an igloo."),
    ("Which planet is known as the red planet?", "Mars", "Mars is known as the red planet."),
    ("What is the opposite of full?", "Empty", "The opposite of full is empty."),
]

HELDOUT_FACTS = [
    ("What is the capital of Portugal?", "Lisbon", "The capital of Portugal is Lisbon."),
    ("How many legs does a cat have?", "Four", "A cat has four legs."),
    ("What do you call a baby sheep?", "A lamb", "A baby sheep is called a lamb."),
    ("Which season comes after summer?", "Autumn", "Autumn comes after summer."),
    ("What is the opposite of wet?", "Dry", "The opposite of wet is dry."),
    ("What colour is snow?", "White", "Snow is white."),
    ("What is the capital of Ireland?", "Dublin", "The capital of Ireland is Dublin."),
    ("How many seconds are in a minute?", "Sixty", "There are sixty seconds in a minute."),
    ("What do spiders spin?", "Webs", "Spiders spin webs."),
    ("Which organ do we use to think?", "The brain", "We use the brain to think."),
    ("What is the capital of Mexico?", "Mexico City", "The capital of Mexico is Mexico City."),
    ("What do you call a baby horse?", "A foal", "A baby horse is called a foal."),
    ("How many legs does a bird have?", "Two", "A bird has two legs."),
    ("What is the largest desert in Africa?", "The Sahara", "The Sahara is the largest desert in Africa."),
    ("Which animal gives us wool?", "The sheep", "The sheep gives us wool."),
    ("What is the opposite of old?", "Young", "The opposite of old is young."),
    ("What do you call a group of stars that forms a picture?", "A constellation", "A group of stars that forms a picture is a constellation."),
    ("What is the capital of Sweden?", "Stockholm", "The capital of Sweden is Stockholm."),
    ("What does a compass show?", "Direction", "A compass shows direction."),
    ("Which fruit is used to make wine?", "Grapes", "Grapes are used to make wine."),
]

TRAIN_SENTENCES = [
    "The cat sat quietly by the warm fire.",
    "Please close the door when you leave.",
    "Tomorrow will be sunny with a light breeze.",
    "My brother plays the violin every evening.",
    "The train to the city leaves at nine.",
    "Green apples are sour but very crunchy.",
    "We planted tomatoes in the back garden.",
    "The library is closed on Sundays.",
    "She painted the fence a bright yellow.",
    "Two owls were sitting on the old barn roof.",
    "Mix the flour and sugar before adding eggs.",
    "The river was calm after the storm passed.",
    "Remember to water the plants on Friday.",
    "The museum has a new room about dinosaurs.",
    "He lost his keys somewhere in the park.",
    "Our team won the match by two goals.",
    "A small boat drifted slowly across the lake.",
    "The bakery sells fresh bread every morning.",
    "Turn left at the big red post box.",
    "Snow covered the hills for a whole week.",
    "The children built a castle out of sand.",
    "Keep your ticket until the end of the journey.",
    "The moon looked huge above the sea tonight.",
    "Grandma knitted a blue scarf for me.",
    "Lights out at ten, breakfast at seven.",
    "Blue whales are the largest animals on Earth.",
    "Add a pinch of salt to the soup.",
    "The old clock in the hall stopped at noon.",
    "Bring an umbrella, it might rain later.",
    "Every leaf on the tree had turned orange.",
    "The shop on the corner sells paint and nails.",
    "Quiet please, the baby is sleeping.",
    "Our neighbour has three noisy geese.",
    "The bus was late again this morning.",
    "Fold the paper in half, then in half again.",
    "A fox ran across the field at dawn.",
    "Write your name at the top of the page.",
    "The lighthouse flashes once every ten seconds.",
    "Jam, butter and honey are on the table.",
    "The concert starts at half past seven.",
    "hello world, this is a test.",
    "Order 42 arrives on Tuesday.",
    "Rain, rain, go away.",
    "The password is not 1234.",
    "Yes, no, maybe, later.",
]

HELDOUT_SENTENCES = [
    "The garden gate creaks when the wind blows.",
    "Please bring two pencils to the exam.",
    "A red kite circled high above the village.",
    "The soup needs more pepper and less salt.",
    "Our flight lands at six in the evening.",
    "My sister reads a chapter every night.",
    "The puppy chewed the corner of the rug.",
    "Ten green bottles stood on the wall.",
    "Meet me by the fountain at noon.",
    "The orchard smells of apples in October.",
]

# ---------------------------------------------------------------------------- constraint wordings

WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}

UPPER = ["{q} Answer in all capital letters.", "{q} Write your answer in capital letters only.",
         "{q} Reply using only uppercase letters."]
UPPER_HELDOUT = UPPER + ["{q} Give your whole answer in CAPITALS."]
LOWER = ["{q} Answer in all lowercase letters.", "{q} Write your answer in lowercase only, with no capital letters.",
         "{q} Reply using only lowercase letters."]
LOWER_HELDOUT = LOWER + ["{q} Use no capital letters at all in your answer."]
LINES = ["Name {w} {t}, one per line.", "List {w} {t}. Put each one on its own line.",
         "Give {w} {t}, one per line, with no numbers or bullets."]
LINES_HELDOUT = LINES + ["Write {w} {t}, each on a separate line."]
BULLETS = ["List {w} {t} as bullet points starting with \"-\".", "Name {w} {t}. Use \"-\" bullets.",
           "Give {w} {t} as a list, each line starting with \"- \"."]
BULLETS_HELDOUT = BULLETS + ["Make a \"-\" bulleted list of {w} {t}."]
STARTS = ["{q} Start your answer with \"{p}\".", "{q} Begin your reply with \"{p}\".",
          "{q} Your answer must start with \"{p}\"."]
STARTS_HELDOUT = STARTS + ["{q} Open your answer with the words \"{p}\"."]
PREFIXES = ["Answer:", "In short,", "Well,", "Here is the answer:", "Simply put,", "Fact:", "OK.", "Quick answer:"]
PREFIXES_HELDOUT = ["Reply:", "To answer,", "Briefly,", "Result:", "Answer:", "Well,"]
MAX_WORDS = ["{q} Answer in {n} words or fewer.", "{q} Use at most {n} words.", "{q} Reply in no more than {n} words."]
MAX_WORDS_HELDOUT = MAX_WORDS + ["{q} Keep your answer to {n} words or fewer."]
REPEAT = ["Repeat exactly: {s}", "Repeat this sentence exactly, with no changes: {s}", "Say exactly this and nothing else: {s}"]
REPEAT_HELDOUT = REPEAT + ["Copy this text exactly: {s}"]
REPEAT_INPUT = "Repeat the text below exactly."


PROPER = {"Mercury", "Jupiter", "Mars"}  # sentence-initial words that keep their capital after "Well,"


def _with_prefix(prefix: str, answer: str) -> str:
    if prefix.endswith(",") and answer.split()[0] not in PROPER:
        return f"{prefix} {answer[0].lower()}{answer[1:]}"
    return f"{prefix} {answer}"


def build(topics, facts, sentences, wordings, prefixes, id_prefix, uses_per_fact, category_prefix="format"):
    upper, lower, lines, bullets, starts, max_words, repeat = wordings
    items = []

    def add(kind, instruction, response, check, input_text=""):
        items.append({"id": "", "instruction": instruction, "input": input_text, "response": response,
                      "category": f"{category_prefix}-{kind}", "check": check})

    for i, (topic, things) in enumerate(topics):
        n_lines, n_bullets = 3 + i % 3, 3 + (i + 1) % 3
        add("lines", lines[i % len(lines)].format(w=WORDS[n_lines], t=topic), "\n".join(things[:n_lines]),
            {"kind": "lines", "n": n_lines})
        add("bullets", bullets[i % len(bullets)].format(w=WORDS[n_bullets], t=topic),
            "\n".join(f"- {t}" for t in things[:n_bullets]), {"kind": "bullets", "n": n_bullets})
    # each fact is used for `uses_per_fact` of the four fact constraints, rotating, so each constraint gets
    # the same number of items
    kinds = ["upper", "lower", "starts", "max_words"]
    offsets = {2: (0, 2), 3: (0, 1, 2)}[uses_per_fact]
    for i, (question, short, sentence) in enumerate(facts):
        for kind in (kinds[(i + o) % 4] for o in offsets):
            k = i // 4
            if kind == "upper":
                add(kind, upper[k % len(upper)].format(q=question), sentence.upper(), {"kind": "upper"})
            elif kind == "lower":
                add(kind, lower[k % len(lower)].format(q=question), sentence.lower(), {"kind": "lower"})
            elif kind == "starts":
                prefix = prefixes[(i + k) % len(prefixes)]
                add(kind, starts[k % len(starts)].format(q=question, p=prefix), _with_prefix(prefix, sentence),
                    {"kind": "starts", "prefix": prefix})
            else:
                n = (3, 5, 8)[i % 3]
                answer = sentence if len(sentence.split()) <= n else short
                add(kind, max_words[k % len(max_words)].format(q=question, n=n), answer, {"kind": "max_words", "n": n})
    for i, text in enumerate(sentences):
        if i % 4 == 3:  # some with the text as the item's input
            add("repeat", REPEAT_INPUT, text, {"kind": "repeat", "text": text}, input_text=text)
        else:
            add("repeat", repeat[i % len(repeat)].format(s=text), text, {"kind": "repeat", "text": text})
    for n, item in enumerate(items, 1):
        item["id"] = f"{id_prefix}{n:04d}"
    return items


def write(path, items):
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")


def main():
    train = build(TRAIN_TOPICS, TRAIN_FACTS, TRAIN_SENTENCES, (UPPER, LOWER, LINES, BULLETS, STARTS, MAX_WORDS, REPEAT),
                  PREFIXES, "f", uses_per_fact=3)
    probes = build(HELDOUT_TOPICS, HELDOUT_FACTS, HELDOUT_SENTENCES,
                   (UPPER_HELDOUT[::-1], LOWER_HELDOUT[::-1], LINES_HELDOUT[::-1], BULLETS_HELDOUT[::-1],
                    STARTS_HELDOUT[::-1], MAX_WORDS_HELDOUT[::-1], REPEAT_HELDOUT[::-1]), PREFIXES_HELDOUT, "p",
                   uses_per_fact=2)
    write(os.path.join(HERE, "format_train.jsonl"), train)
    write(os.path.join(HERE, "format_probes.jsonl"), probes)
    print(f"format_train.jsonl: {len(train)} items; format_probes.jsonl: {len(probes)} probes")


if __name__ == "__main__":
    main()
