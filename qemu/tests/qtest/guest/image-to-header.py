#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Turn a binary image into a C header holding it as an array, so that a
# qtest carries its guest with it: image-to-header.py NAME INPUT OUTPUT.

import sys


def main():
    name, src, dst = sys.argv[1:4]
    with open(src, "rb") as f:
        data = f.read()
    lines = ["/* Generated from %s by image-to-header.py: do not edit. */" %
             src.rsplit("/", 1)[-1],
             "static const unsigned char %s[%d] = {" % (name, len(data))]
    for i in range(0, len(data), 12):
        chunk = data[i:i + 12]
        lines.append("    " + " ".join("0x%02x," % b for b in chunk))
    lines.append("};")
    with open(dst, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
