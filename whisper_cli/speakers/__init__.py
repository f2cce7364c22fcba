"""The speaker part: who spoke when, and by which name.

clustering.py groups a recording's voice embeddings into speakers; enrollment.py turns reference
clips into voiceprints, voiceprints.py keeps them in a folder, naming.py matches a recording's
speakers to them; known.py resolves what a job asks for (`--speaker NAME[=CLIP]`).
The segmentation, embedding and reconstruction steps are diarize.py,
segmentation.py and encoder.py (fbank.py: the encoder's input features).
"""
