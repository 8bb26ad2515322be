"""A model written the way lightning-hydra-template writes them (src/models/mnist_module.py,
src/models/components/simple_dense_net.py, configs/model/mnist.yaml), shrunk to tiny sizes."""
