"""One torch thread per test process: the suite runs on two cores beside node subprocesses,
where two intra-op threads per process oversubscribe the machine (5-10x slower tests)."""

import torch

torch.set_num_threads(1)
