"""Convolutional LSTM (Shi et al. 2015, "Convolutional LSTM Network"): an LSTM whose
input-to-state and state-to-state maps are convolutions, so the state keeps its layout."""

from __future__ import annotations

import torch
from torch import nn

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (hidden h, cell c), each (B, hidden, H, W)


class ConvLSTMCell(nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int, kernel: int = 3) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"ConvLSTM kernel must be odd and positive, got {kernel}")
        self.hidden_channels = hidden_channels
        # One convolution computes all four gates from [input, previous hidden state].
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel, padding=kernel // 2)
        with torch.no_grad():  # forget gate open at the start, so the state is remembered
            self.gates.bias[hidden_channels : 2 * hidden_channels].fill_(1.0)

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> LSTMState:
        """x: (B, in_channels, H, W); state None = zeros. Returns the new (h, c)."""
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_channels, x.shape[2], x.shape[3])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMStack(nn.Module):
    """Stacked ConvLSTM cells; each layer's hidden state is the next layer's input."""

    def __init__(self, in_channels: int, hidden: list[int], kernel: int = 3) -> None:
        super().__init__()
        if not hidden or min(hidden) < 1:
            raise ValueError(f"ConvLSTM needs at least one layer of >= 1 hidden channels, got {hidden}")
        channels = [in_channels, *hidden]
        self.cells = nn.ModuleList(ConvLSTMCell(c_in, c_out, kernel) for c_in, c_out in zip(channels[:-1], channels[1:]))

    def forward(self, x: torch.Tensor, states: list[LSTMState] | None = None) -> tuple[torch.Tensor, list[LSTMState]]:
        """One time step. Returns the top layer's hidden state and every layer's new state."""
        new_states = []
        for i, cell in enumerate(self.cells):
            h, c = cell(x, None if states is None else states[i])
            new_states.append((h, c))
            x = h
        return x, new_states
