"""A stand-in for a tensor a trainer indexes once per step: it records each step's batch indices (which rows the
step drew), so a test can check where a batch came from without reaching into the loop."""


class IndexRecorder:
    def __init__(self, t):
        self.t, self.rows = t, []

    def __getitem__(self, idx):
        self.rows.append(idx.tolist())
        return self.t[idx]
