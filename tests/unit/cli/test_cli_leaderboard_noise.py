"""The leaderboard's spread column, noise ties and split-identity warning."""

from __future__ import annotations

from cli_objects import experiment, trial

from thunderbolt.cli.leaderboard import leaderboard_table, split_note, within_noise

SPLIT = {"seed": 7, "validationHash": "abc", "folds": 5}


def test_spread_column_and_trials_within_the_leaders_noise_are_marked():
    trials = [
        trial(0, objective=0.90, objectiveStd=0.02, split=SPLIT),
        trial(1, objective=0.95, objectiveStd=0.03, split=SPLIT),
        trial(2, objective=0.93, objectiveStd=0.01, split=SPLIT),
    ]
    lines = leaderboard_table(experiment(), trials).splitlines()
    assert lines[0].split()[:4] == ["RANK", "TRIAL", "VAL_ACCURACY", "±STD"]
    assert lines[1].split()[:4] == ["1", "iris-sn-001", "0.95", "0.03"]
    assert lines[2].split()[:2] == ["2~", "iris-sn-002"]  # 0.02 below: within ±0.03
    assert lines[3].split()[:2] == ["3", "iris-sn-000"]  # 0.05 below: a real difference
    assert "1 trial(s) within the leader's spread (±0.03)" in lines[4]
    assert len(lines) == 5  # one split for all: no warning


def test_no_spread_means_no_column_and_no_ties():
    trials = [trial(0, objective=0.90), trial(1, objective=0.9001)]
    text = leaderboard_table(experiment(), trials)
    assert "±STD" not in text and "~" not in text
    assert not within_noise(trials[1], trials[0])


def test_trials_on_different_splits_are_flagged():
    other = {"seed": 8, "validationHash": "def"}
    trials = [trial(0, objective=0.9, split=SPLIT), trial(1, objective=0.8, split=other)]
    assert "2 different splits" in (split_note(trials) or "")
    assert split_note([trial(0, objective=0.9, split=SPLIT)] * 2) is None
    assert "different splits" in leaderboard_table(experiment(), trials)


def test_describe_and_leaderboard_show_each_trials_split_and_fold_std():
    from thunderbolt.cli.describe import trial_view, trials_table

    other = {"seed": 7, "validationHash": "0123456789abcdef"}
    trials = [
        trial(0, objective=0.90, objectiveStd=0.02, split=SPLIT),
        trial(1, objective=0.95, objectiveStd=0.03, split=SPLIT),
        trial(2, objective=0.80, split=other),
        trial(3, phase="Running"),
    ]
    rows = trials_table(trials).splitlines()
    assert rows[0].split()[:5] == ["TRIAL", "PHASE", "OBJECTIVE", "±STD", "SPLIT"]
    assert rows[1].split()[:5] == ["iris-sn-000", "Succeeded", "0.9", "0.02", "7/abcx5"]
    assert rows[3].split()[:5] == ["iris-sn-002", "Succeeded", "0.8", "-", "7/01234567"]
    assert rows[4].split()[:4] == ["iris-sn-003", "Running", "-", "-"]
    view = trial_view(trials[1])
    assert "Objective:   0.95 ± 0.03 (std over folds)" in view
    assert "Split:       seed 7, validation rows abc, 5 folds" in view
    assert "Split:       seed 7, validation rows 0123456789abcdef, holdout" in trial_view(trials[2])
    assert "Split:" not in trial_view(trials[3])
    board = leaderboard_table(experiment(), trials).splitlines()
    assert board[0].split()[-1] == "SPLIT" and board[1].split()[-1] == "7/abcx5"
    assert board[3].split()[-1] == "7/01234567"
