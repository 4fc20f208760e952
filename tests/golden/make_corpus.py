#!/usr/bin/env python3
"""make_corpus.py: writes corpus.txt, the golden suite's fixed training text.

What it is for: a text that does not depend on the installed fortunes, made once and
committed; this script only says how it was made (re-running it gives the same bytes).
Sentences are drawn from fixed word lists by a 64-bit LCG (no library RNG, so the output
cannot change with the Python version). Not for anything but tests/golden.
"""
import sys

SUBJ = ["the cat", "a dog", "my neighbour", "the old sailor", "a small bird", "the teacher",
        "every child", "the engineer", "our cook", "the tired horse", "a stranger", "the king"]
VERB = ["sees", "likes", "carries", "follows", "paints", "finds", "remembers", "feeds",
        "watches", "builds", "loses", "sells"]
OBJ = ["a red ball", "the green door", "an apple", "the long road", "a wooden boat",
       "the quiet river", "some bread", "a letter", "the blue kite", "an open window",
       "the last train", "a copper key"]
ADV = ["today", "at night", "in the morning", "slowly", "with care", "again", "near the sea",
       "before dinner", "after the rain", "every day"]
PUNCT = [".", ".", ".", "!", "?"]

state = 0x2545F4914F6CDD1D


def rnd(n):
    global state
    state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
    return (state >> 33) % n


def sentence():
    s = SUBJ[rnd(len(SUBJ))] + " " + VERB[rnd(len(VERB))] + " " + OBJ[rnd(len(OBJ))]
    if rnd(2):
        s += " " + ADV[rnd(len(ADV))]
    if rnd(4) == 0:
        s += " and " + VERB[rnd(len(VERB))] + " " + OBJ[rnd(len(OBJ))]
    return s[0].upper() + s[1:] + PUNCT[rnd(len(PUNCT))]


out, size = [], 0
while size < 98304:
    para = " ".join(sentence() for _ in range(2 + rnd(5))) + "\n"
    if rnd(3) == 0:
        para += "\n"
    out.append(para)
    size += len(para)
sys.stdout.write("".join(out)[:98304])
