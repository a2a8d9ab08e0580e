"""Test sentences."""
#: Common English sentences (not a training corpus: the LM only saw wordfreq's word list).
COMMON_TEXT = (
    "i would like a cup of tea. can you help me with this? "
    "thank you for coming to see me today. "
    "please call my wife and tell her that i am fine. "
    "the weather is very nice, we should go out for a walk. "
    "i think it is time to go home now."
)
