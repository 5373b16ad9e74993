"""Inputs and outputs: readers of every format with bad records counted, and atomic writers."""
