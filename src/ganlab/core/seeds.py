"""The fixed seeds of evaluation and pictures: every run is measured and drawn on the same noise."""

#: Noise seed of every evaluation (metrics.json, val/*): all runs are measured on the same z.
EVAL_SEED = 12345
#: Noise seed of every picture (sample grids, class grids, scatter plots).
SAMPLE_SEED = 2024
#: Seed of the real images shown and measured for reconstructions (BiGAN, AAE).
RECONSTRUCTION_SEED = 77
#: Noise seed of the class-conditional evaluation samples (per-class accuracy, intra-class FID).
CLASS_SEED = 4321
#: Seed of the images an image dataset holds out of training (``data.held_out``).
HELD_OUT_SEED = 5
