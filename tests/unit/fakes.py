"""Stand-ins shared by the benchmark unit tests."""


class FakeEvent:
    """CUDA-event stand-in reading a fake device clock (seconds)."""

    def __init__(self, clock):
        self.clock, self.t = clock, None

    def record(self):
        self.t = self.clock["now"]

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3  # milliseconds, like torch.cuda.Event
