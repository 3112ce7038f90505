"""`python -m csoftmax`: print this installation's configuration."""
from csoftmax import show_config

show_config()
