"""The chapters' models, one module per family, each readable top to bottom.

=================  ==========================================================  ===========
module             what                                                        chapters
=================  ==========================================================  ===========
deconv             the article's network and FormulaNet (PyTorch)              I.2 to I.5
deconv_keras       the same two networks in Keras, and weights moved between   I.4, I.5
fusion             image + audio digits: concat, late and deconv fusion        I.6, I.7
crossmodal         ResNet18 + BERT towers, the joint space, cross-attention    II.3, II.4
tagging            tags from the joint space vs a tag classifier               II.5a
generation         caption -> picture: pixel regression, a conditional VAE     II.5b
vqa                easy-VQA: question + picture -> answer, attention fusion     II.5c
audio              spectrograms, MFCCs, spoken digits, voice -> image          II.5d, II.5f
speech             Whisper and a small CTC recogniser                          II.5d
tts                text -> mel spectrogram -> waveform                         II.5e
=================  ==========================================================  ===========

A model module builds its networks one way: a frozen dataclass ``Config``, ``build(config)``
and the chapters' configurations as upper-case constants (``deconv.FORMULA``). Families import
the core (:mod:`mmlearn.blocks`, :mod:`mmlearn.training`, :mod:`mmlearn.data`, ...) and their own
family, never another family; ``tests/test_layout.py`` holds these rules.

Importing this package imports none of its modules: ``from mmlearn.models import deconv_keras``
is the one that loads TensorFlow.
"""
