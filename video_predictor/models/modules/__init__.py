"""Building blocks shared by the model families (convolutions, warping, recurrent cells, outputs)."""
