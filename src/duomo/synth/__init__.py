"""SynthWorld: a synthetic diagnostic video world with exact ground truth for every task.

scene.py (SynthConfig, sample_scene, object_state), render.py (frames and soundtrack),
language.py (captions, QA, dialog, segments), world.py (generate_world, sample_records).
Shape pitches: circle 400 Hz, square 600 Hz, triangle 900 Hz, star 1350 Hz. The compositional
split keeps blue triangles and red stars out of train and val; every test video has one.
"""
