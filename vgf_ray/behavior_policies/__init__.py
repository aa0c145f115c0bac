"""The project's own MuJoCo behavior policies (SAC actors) that generate the locomotion datasets.

``train.py`` beside this file trains them (stable-baselines3's SAC; ``pip install vgf_ray[behavior]``); the
weights ship here as plain ``.npz`` arrays (never pickles), with each environment's training curve and returns.
"""
