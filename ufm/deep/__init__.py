"""Deep-net backend: data sets held as one uint8 tensor, batched augmentation (model and training to come)."""
