"""SynthWorld: a synthetic diagnostic video world with exact ground truth for every task."""
