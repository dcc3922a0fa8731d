"""What every path of the runtime shares, free of ROS and of PyTorch: the predictor
interface, model metadata and files, the ONNX graph's tensor names, pixel decoding,
preprocessing, the frame buffer and the classical flow the models take as input."""
