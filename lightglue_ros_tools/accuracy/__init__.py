"""Accuracy diagnoses outside the product: where a figure of ``lightglue-ros track`` comes from,
frame by frame."""
