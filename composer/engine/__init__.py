"""The composition engine: pure torch/peft/nevergrad code, no Django imports."""
