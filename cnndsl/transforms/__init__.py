"""Graph rewrites on the checked IR: fully convolutional conversion, printing back to .cnn."""
