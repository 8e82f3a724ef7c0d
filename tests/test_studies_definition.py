"""Study files: the validator on good and broken files (every problem with its line), seeded assignment
balance, and blinding (labels and order do not reveal the condition)."""

from collections import Counter
from pathlib import Path

import pytest

from workbench.studies.assignment import assign_conditions, balanced_latin_square, blind, plan_steps
from workbench.studies.definition import StudyError, find_study, load_study, parse_study

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "studies" / "refiner_ab.yaml"

MINIMAL = """\
code: TEST-1
title: t
consent: ok
seed: 7
conditions:
  - {id: a, label: A}
  - {id: b, label: B}
  - {id: c, label: C}
assignment: {design: DESIGN, method: METHOD}
steps:
  - {id: intro, kind: questionnaire, per_condition: false, questions: [{id: age, type: text, text: Age}]}
  - {id: write, kind: task, prompt: a cat}
  - {id: rate, kind: questionnaire, per_condition: true, questions: [{id: ease, type: likert, text: Easy}]}
  - {id: pick, kind: comparison, items: [{id: x, condition: a, text: one}, {id: y, condition: b, text: two}]}
"""


def minimal(design="between", method="counterbalanced"):
    return parse_study(MINIMAL.replace("DESIGN", design).replace("METHOD", method), source="minimal.yaml")


def test_the_example_study_is_valid_and_found_by_its_code():
    study = load_study(EXAMPLE)
    assert (study.code, study.design, study.method, study.seed) == ("REFINER-AB", "between", "counterbalanced", 20261129)
    assert [c.id for c in study.conditions] == ["refiner", "manual"]
    assert [s.kind for s in study.steps] == ["task", "comparison", "comparison", "comparison", "questionnaire"]
    assert study.step("pick_image").media == "image" and study.resolve("media/sofa_a.png").is_file()
    assert find_study("refiner-ab").code == "REFINER-AB"  # codes are typed by people: case-insensitive
    with pytest.raises(ValueError, match="No study has the code 'NOPE-9'"):
        find_study("NOPE-9")
    with pytest.raises(ValueError, match="Type the study code"):
        find_study("  ")


BROKEN = """\
code: x
title: Bad
consent: ""
seed: -3
conditions:
  - id: Refiner
    label: A
  - id: manual
    lable: B
assignment: {design: betwen, method: counterbalanced}
steps:
  - id: t1
    kind: taks
  - id: cmp
    kind: comparison
    items:
      - {id: a, condition: nope, text: hi}
  - id: q
    kind: questionnaire
    questions:
      - {id: q1, type: likert, text: x, scale: 20}
      - {id: q1, type: text, text: y}
  - id: t1
    kind: task
    image: missing.png
"""


def test_the_validator_explains_every_mistake_by_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(StudyError) as info:
        load_study(path)
    found = {(p.line, p.path): p.message for p in info.value.problems}
    expected = {
        (1, "code"): "code must be 3-40 letters",
        (3, "consent"): "consent text must not be empty",
        (4, "seed"): "seed must be a whole number from 0 to 2**32-1",
        (6, "conditions[0].id"): "condition id must be lower-case",
        (8, "conditions[1]"): "'label' is missing",
        (9, "conditions[1].lable"): "unknown field 'lable'; did you mean 'label'?",
        (10, "assignment.design"): "'design' must be one of between, within; got 'betwen'",
        (13, "steps[0].kind"): "'kind' must be one of task, comparison, questionnaire; got 'taks'",
        (16, "steps[1].items"): "a pairwise comparison needs exactly 2 items; got 1",
        (17, "steps[1].items[0].condition"): "unknown condition 'nope'",
        (21, "steps[2].questions[0].scale"): "scale must be a whole number of points from 2 to 11; got 20",
        (22, "steps[2].questions[1].id"): "question id 'q1' is used twice (first on line 21)",
        (23, "steps[3].id"): "step id 't1' is used twice (first on line 12)",
        (25, "steps[3].image"): "image file 'missing.png' not found next to the study file",
    }
    for key, start in expected.items():
        assert key in found, f"missing {key}; got {sorted(found)}"
        assert found[key].startswith(start), (key, found[key])
    assert len(info.value.problems) == len(expected)
    assert "line 9 (conditions[1].lable)" in str(info.value)  # the message a researcher reads


@pytest.mark.parametrize("text, line, message", [
    ("code: AB-1\ntitle: t\nconsent: c\nconditions: [{id: a, label: A}]\nsteps:\n  - {id: s, kind: task\n",
     7, "not valid YAML"),
    ("", None, "the file is empty"),
    ("code: AB-1\ncode: AB-2\ntitle: t\nconsent: c\nconditions: [{id: a, label: A}]\nsteps: [{id: s, kind: task}]\n",
     2, "'code' is given twice (first on line 1)"),
    ("- just\n- a list\n", 1, "must be a mapping"),
    ("code: AB-1\ntitle: t\nconsent: c\nconditions: [{id: a, label: A}]\nassignment: {design: within}\nsteps:\n"
     "  - {id: w1, kind: task}\n  - {id: mid, kind: questionnaire, questions: [{id: q, type: text, text: x}]}\n"
     "  - {id: w2, kind: task}\n", 8, "within subjects, the steps repeated per condition"),
    ("code: AB-1\ntitle: t\nconsent: c\nconditions: [{id: a, label: A}]\nsteps:\n"
     "  - {id: c, kind: comparison, mode: best_worst, media: image, items: [{id: a, path: x.png}, {id: b, text: t},"
     " {id: d, path: ../e.png}]}\n", 6, "an image comparison item needs 'path'"),
])
def test_broken_files_get_clear_messages(text, line, message):
    with pytest.raises(StudyError) as info:
        parse_study(text, source="s.yaml")
    assert any(p.line == line and message in p.message for p in info.value.problems), info.value.problems


def test_between_counterbalanced_assignment_is_balanced_after_every_join():
    study = minimal("between", "counterbalanced")
    counts = Counter()
    for n in range(300):
        counts[assign_conditions(study, n)[0]] += 1
        assert max(counts.values()) - min(counts.get(c, 0) for c in "abc") <= 1
    assert counts == {"a": 100, "b": 100, "c": 100}
    assert [assign_conditions(study, n) for n in range(30)] == [assign_conditions(minimal(), n) for n in range(30)]
    other_seed = parse_study(MINIMAL.replace("seed: 7", "seed: 8").replace("DESIGN", "between")
                             .replace("METHOD", "counterbalanced"))
    assert [assign_conditions(study, n) for n in range(30)] != [assign_conditions(other_seed, n) for n in range(30)]


def test_between_randomised_assignment_is_seeded_and_roughly_balanced():
    study = minimal("between", "randomised")
    draws = [assign_conditions(study, n)[0] for n in range(600)]
    assert draws == [assign_conditions(study, n)[0] for n in range(600)]  # recomputable from the seed
    counts = Counter(draws)
    assert set(counts) == {"a", "b", "c"} and all(150 <= v <= 250 for v in counts.values()), counts


def test_within_counterbalanced_orders_form_a_balanced_latin_square():
    for k in (2, 3, 4, 5):
        rows = balanced_latin_square(k)
        for pos in range(k):  # each condition in each position equally often
            assert Counter(r[pos] for r in rows) == {c: len(rows) // k for c in range(k)}
        follows = Counter((r[i], r[i + 1]) for r in rows for i in range(k - 1))
        assert len(set(follows.values())) == 1  # each condition precedes each other equally often
    study = minimal("within", "counterbalanced")
    orders = [tuple(assign_conditions(study, n)) for n in range(60)]
    assert all(sorted(o) == ["a", "b", "c"] for o in orders)
    for pos in range(3):
        assert Counter(o[pos] for o in orders) == {"a": 20, "b": 20, "c": 20}


def test_within_subjects_plan_repeats_the_per_condition_block_in_order():
    study = minimal("within", "counterbalanced")
    plan = plan_steps(study, ["b", "a", "c"])
    assert [p.key for p in plan] == ["intro", "write@b", "rate@b", "write@a", "rate@a", "write@c", "rate@c", "pick"]
    assert [p.condition for p in plan] == ["", "b", "b", "a", "a", "c", "c", ""]
    between = plan_steps(minimal(), ["c"])
    assert [p.key for p in between] == ["intro", "write", "rate", "pick"] and {p.condition for p in between} == {"c"}


def test_blinding_labels_and_order_do_not_reveal_the_condition():
    study = load_study(EXAMPLE)
    step = study.step("rank_texts")
    cond = {it.id: it.condition for it in step.items}
    first_label = Counter()
    label_of = {item.id: Counter() for item in step.items}
    for n in range(400):
        shown = blind(study, step, f"participant-{n}")
        assert [b.label for b in shown] == ["A", "B", "C", "D"]  # labels follow the shown order, nothing else
        assert shown == blind(study, step, f"participant-{n}")  # stable for one participant (reloads, resubmits)
        first_label[cond[shown[0].item_id]] += 1
        for b in shown:
            label_of[b.item_id][b.label] += 1
    # Each condition's items come first about half the time (2 of 4 items each), and every item gets every label.
    assert all(160 <= v <= 240 for v in first_label.values()), first_label
    assert all(set(c) == {"A", "B", "C", "D"} and min(c.values()) >= 60 for c in label_of.values()), label_of


def alias_bomb(levels: int, width: int = 9) -> str:
    """A "billion laughs" study file: each level repeats the one below `width` times (9**levels values)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\ncode: BOMB-1\ntitle: *a{levels}\n"


@pytest.mark.parametrize("text, line, message", [
    (alias_bomb(6), 5, "expands to more than 50,000 values"),
    (alias_bomb(9), 5, "expands to more than 50,000 values"),
    ("code: abc\ntitle: &t [a, *t]\n", 2, "refers to a block that contains it"),
    ("a: &x\n  b: *x\ncode: abc\n", 1, "refers to a block that contains it"),
    ("x: " + "[" * 200 + "]" * 200, 1, "nested more than 50 levels deep"),
    ("code: abc\ntitle: " + "a" * 200_001, None, "at most 200,000 are read"),
    ("? [a, b]\n: 1\n", 1, "must be text"),
    ("code: !!python/object:os.system x\n", 1, "value cannot be read"),
])
def test_hostile_yaml_is_one_clear_problem_not_a_hang_or_a_recursion_error(text, line, message):
    with pytest.raises(StudyError) as info:
        parse_study(text, source="pasted.yaml")
    found = [p for p in info.value.problems if message in p.message]
    assert len(found) == 1, info.value.problems
    assert found[0].line == line
    if "text" not in message and "cannot be read" not in message:
        # the size refusals stop before any value is built: the one problem, not "'consent' is missing" after it
        assert len(info.value.problems) == 1, info.value.problems


def test_aliases_within_the_limit_still_work():
    text = MINIMAL.replace("DESIGN", "between").replace("METHOD", "counterbalanced")
    text = text.replace("title: t", "title: &c ok").replace("consent: ok", "consent: *c")
    assert parse_study(text).consent == "ok"
