#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Prepare, edit, check and export the patch series against pristine QEMU.

The repository holds two kinds of change to upstream QEMU 10.2.2:

* overlay files: new files we wrote, at their QEMU paths under qemu/
  (qemu/accel/, qemu/target/, qemu/tests/qtest/, qemu/docs/, ...; the
  overlay directory is qemu/ unless --overlay says otherwise), in their
  final state, listed in
  patches/overlay-files together with the patch that adds each of them;
* patches/*.patch, listed in patches/series: git-format patches with each
  patch's changes to upstream files and to overlay files that an earlier
  patch adds.  A patch adds its own overlay files as they are at that
  point: their final state with the later patches' changes undone.

Sub-commands (all take --patches, --overlay and --upstream-repo):

  prepare DEST        pristine + the series, a commit per patch, as exported
  prepare-pristine DEST  pristine plus the build-only first patch
  edit DEST           a git work tree whose commits are the full series:
                      each patch together with the overlay files it adds
                      (later commits may change any file, overlay files
                      included)
  save SRC            write an edited work tree back to patches/ and the
                      overlay (byte-identical when nothing was edited)
  export DEST         a mailable series with cover letter and diffstat;
                      --topic NAME: only that topic (patches/topics),
                      --topic all: each topic into DEST/NAME
  topics              each topic: name, the topic it is based on, its
                      first and last patch number, title
  check-format        subject, body and Signed-off-by of every patch, and
                      that patches/topics cuts the series into topics
  check-overlay       overlay files and patches/overlay-files agree
  tree-id DIR         print the git tree id of DIR's HEAD
"""

import argparse
import email
import email.policy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

# The directories whose files are QEMU overlay files rather than project
# infrastructure.
OVERLAY_ROOTS = (
    "accel", "backends", "docs", "host", "hw", "include", "qapi", "stubs",
    "system", "target", "util", "tests/qtest", "tests/unit",
)

# Commits the scripts make get a fixed committer (and, for the overlay
# commit of a prepared tree, author) and date, so that the same inputs
# always give the same commit ids.  Patches keep their own authors.
COMMITTER_ENV = {
    "GIT_COMMITTER_NAME": "qemu-kvm-memfault scripts",
    "GIT_COMMITTER_EMAIL": "scripts@localhost",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
}
AUTHOR_ENV = {
    "GIT_AUTHOR_NAME": "qemu-kvm-memfault scripts",
    "GIT_AUTHOR_EMAIL": "scripts@localhost",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
}

# Options for the patches stored in patches/: stable bytes across runs.
STORE_OPTS = ["--zero-commit", "--no-signature", "--no-numbered",
              "--abbrev=12", "--no-renames", "--stat=80", "--encoding=UTF-8"]

UPSTREAM_VERSION = "10.2.2"          # as in scripts/lib.sh

SUBJECT_RE = re.compile(r"^[A-Za-z0-9_./,{}*+-]+(?: [A-Za-z0-9_./,{}*+-]+)*: \S")


class SeriesError(Exception):
    pass


def git(repo, *args, env=None, check=True, capture=True, input=None):
    full_env = dict(os.environ)
    full_env.update(COMMITTER_ENV)
    # Neither the user's nor the system's git configuration may change
    # the bytes of a patch.
    full_env["GIT_CONFIG_NOSYSTEM"] = "1"
    full_env["GIT_CONFIG_GLOBAL"] = "/dev/null"
    if env:
        full_env.update(env)
    cmd = ["git", "-C", repo, "-c", "core.autocrlf=false",
           "-c", "core.safecrlf=false", "-c", "gc.auto=0",
           "-c", "advice.detachedHead=false", "-c", "core.quotepath=off",
           "-c", "user.useConfigOnly=false"] + list(args)
    r = subprocess.run(cmd, env=full_env, input=input, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise SeriesError("git %s failed in %s:\n%s%s" %
                          (" ".join(args), repo, r.stdout or "",
                           r.stderr or ""))
    return r


class Series:
    def __init__(self, patches_dir, overlay_dir, upstream_repo):
        self.patches_dir = os.path.abspath(patches_dir)
        self.overlay_dir = os.path.abspath(overlay_dir)
        self.upstream_repo = os.path.abspath(upstream_repo)

    # --- reading the repository ------------------------------------------

    def patch_names(self):
        path = os.path.join(self.patches_dir, "series")
        names = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    names.append(line)
        for n in names:
            if not os.path.isfile(os.path.join(self.patches_dir, n)):
                raise SeriesError("patches/series lists %s, which does not "
                                  "exist" % n)
        return names

    def overlay_map(self):
        """Return [(path, patch)] from patches/overlay-files, in order."""
        path = os.path.join(self.patches_dir, "overlay-files")
        entries = []
        if not os.path.exists(path):
            return entries
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) != 2:
                    raise SeriesError("patches/overlay-files:%d: expected "
                                      "'<path> <patch>', got %r" %
                                      (lineno, line))
                entries.append((parts[0], parts[1]))
        return entries

    def overlay_tree_files(self):
        """Files under the overlay roots of the repository checkout."""
        files = []
        for root in OVERLAY_ROOTS:
            top = os.path.join(self.overlay_dir, root)
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                for fn in filenames:
                    full = os.path.join(dirpath, fn)
                    files.append(os.path.relpath(full, self.overlay_dir))
        return sorted(files)

    def check_overlay(self):
        names = self.patch_names()
        entries = self.overlay_map()
        problems = []
        seen = set()
        for path, patch in entries:
            if path in seen:
                problems.append("%s is listed twice" % path)
            seen.add(path)
            if patch not in names:
                problems.append("%s is owned by %s, which is not in "
                                "patches/series" % (path, patch))
            if not os.path.isfile(os.path.join(self.overlay_dir, path)):
                problems.append("%s is listed but does not exist" % path)
            if not path.startswith(tuple(r + "/" for r in OVERLAY_ROOTS)):
                problems.append("%s is not under an overlay root (%s)" %
                                (path, ", ".join(OVERLAY_ROOTS)))
        for path in self.overlay_tree_files():
            if path not in seen:
                problems.append("%s is an overlay file but no patch owns it "
                                "(add it to patches/overlay-files)" % path)
        if problems:
            raise SeriesError("overlay check failed:\n  " +
                              "\n  ".join(problems))

    def check_format(self):
        problems = []
        for name in self.patch_names():
            problems += check_patch_format(os.path.join(self.patches_dir,
                                                        name), name)
        if problems:
            raise SeriesError("patch format check failed:\n  " +
                              "\n  ".join(problems))
        self.topics()

    def patch_subject(self, name):
        with open(os.path.join(self.patches_dir, name), "rb") as f:
            msg = email.message_from_binary_file(f,
                                                 policy=email.policy.default)
        subject = str(msg["Subject"] or "")
        return re.sub(r"^\[PATCH[^]]*\] *", "", subject).strip()

    def topics(self):
        """The topics of patches/topics, each a run of patches.

        Returns [{name, based_on, title, first, last}] in series order;
        first and last are 1-based patch numbers.  Without the file the
        whole series is one topic, "all".
        """
        names = self.patch_names()
        path = os.path.join(self.patches_dir, "topics")
        if not os.path.exists(path):
            return [{"name": "all", "based_on": None, "title": "",
                     "first": 1, "last": len(names)}]
        subjects = [self.patch_subject(n) for n in names]
        topics = []
        cur = None
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                where = "patches/topics:%d" % lineno
                m = re.match(r"^topic ([a-z][a-z0-9-]*)$", line)
                if m:
                    cur = {"name": m.group(1), "based_on": None,
                           "title": None, "first": None}
                    topics.append(cur)
                    continue
                m = re.match(r"^  (based-on|title|first): (.+)$", line)
                if not m or cur is None:
                    raise SeriesError("%s: expected 'topic NAME' or an "
                                      "indented 'based-on:', 'title:' or "
                                      "'first:' line, got %r" % (where, line))
                key, value = m.group(1), m.group(2).strip()
                if key == "based-on":
                    cur["based_on"] = None if value == "-" else value
                elif key == "title":
                    cur["title"] = value
                else:
                    if value not in subjects:
                        raise SeriesError(
                            "%s: topic %s starts with %r, which is the "
                            "subject of no patch in patches/series" %
                            (where, cur["name"], value))
                    cur["first"] = subjects.index(value) + 1
        seen = set()
        for i, t in enumerate(topics):
            if t["first"] is None or t["title"] is None:
                raise SeriesError("patches/topics: topic %s needs a "
                                  "'first:' and a 'title:' line" % t["name"])
            if t["name"] in seen:
                raise SeriesError("patches/topics: topic %s is defined "
                                  "twice" % t["name"])
            if t["based_on"] is not None and t["based_on"] not in seen:
                raise SeriesError("patches/topics: topic %s is based on %s, "
                                  "which is not a topic before it" %
                                  (t["name"], t["based_on"]))
            seen.add(t["name"])
            if i == 0 and t["first"] != 1:
                raise SeriesError("patches/topics: the first topic (%s) must "
                                  "start with the first patch, %r" %
                                  (t["name"], subjects[0]))
            if i > 0 and t["first"] <= topics[i - 1]["first"]:
                raise SeriesError("patches/topics: topic %s starts before "
                                  "the topic listed above it" % t["name"])
        for i, t in enumerate(topics):
            t["last"] = (topics[i + 1]["first"] - 1 if i + 1 < len(topics)
                         else len(names))
        return topics

    def topic(self, name, topics=None):
        if topics is None:
            topics = self.topics()
        for t in topics:
            if t["name"] == name:
                return t
        raise SeriesError("no topic %r; the topics are: %s" %
                          (name, ", ".join(t["name"] for t in topics)))

    # --- trees -----------------------------------------------------------

    def upstream_files(self):
        r = git(self.upstream_repo, "ls-tree", "-r", "--name-only",
                "upstream")
        return set(r.stdout.splitlines())

    def new_tree(self, dest):
        """A fresh work tree of the pristine upstream commit at dest."""
        if os.path.exists(dest):
            shutil.rmtree(dest)
        r = subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout",
                            self.upstream_repo, dest],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            raise SeriesError("cannot clone %s: %s" % (self.upstream_repo,
                                                        r.stderr))
        if os.environ.get("QKM_SPARSE_TREES"):
            # Throw-away trees for checks: leave out roms/ (firmware
            # sources, two thirds of the tree, never patched).  The index
            # keeps it, so tree ids are unchanged.
            git(dest, "sparse-checkout", "set", "--no-cone", "/*", "!/roms/")
        git(dest, "checkout", "-q", "-B", "series", "upstream")
        git(dest, "tag", "-f", "upstream", "upstream")

    def am(self, dest, patch_path, what):
        r = git(dest, "am", "-q", "--keep-cr", "--no-3way", patch_path,
                check=False)
        if r.returncode != 0:
            git(dest, "am", "--abort", check=False)
            raise SeriesError("%s does not apply:\n%s%s" %
                              (what, r.stdout, r.stderr))

    def copy_overlay(self, dest, paths):
        for path in paths:
            src = os.path.join(self.overlay_dir, path)
            dst = os.path.join(dest, path)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)

    def patch_paths(self, name):
        """The files a stored patch changes (its 'diff --git' lines)."""
        paths = set()
        with open(os.path.join(self.patches_dir, name), encoding="utf-8",
                  errors="surrogateescape") as f:
            for line in f:
                m = re.match(r"diff --git a/(\S+) b/(\S+)$", line.rstrip("\n"))
                if m:
                    paths.add(m.group(2))
        return paths

    def write_overlay_at(self, dest, path, index, names, touches):
        """
        Write overlay file @path into @dest as it is right after patch
        names[index]: the repository holds its final state, and every
        later patch that changes it stores that change as a diff, so undo
        those, last first.
        """
        self.copy_overlay(dest, [path])
        later = [n for n in names[index + 1:] if path in touches[n]]
        if not later:
            return
        with tempfile.TemporaryDirectory() as tmp:
            dst = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(dst))
            shutil.copy2(os.path.join(self.overlay_dir, path), dst)
            for n in reversed(later):
                r = subprocess.run(["git", "apply", "-R", "--include=" + path,
                                    os.path.join(self.patches_dir, n)],
                                   cwd=tmp, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    raise SeriesError(
                        "cannot undo the change of patches/%s to %s, to get "
                        "the file as patches/%s adds it: %s" %
                        (n, path, names[index], r.stderr.strip()))
            shutil.copy2(dst, os.path.join(dest, path))

    def build_commits(self, dest):
        """
        Pristine + one commit per patch: the stored patch (its changes to
        upstream files and to overlay files an earlier patch added), then
        the overlay files it adds, as they are at that point.
        """
        names = self.patch_names()
        owned = {}
        for path, patch in self.overlay_map():
            owned.setdefault(patch, []).append(path)
        touches = {n: self.patch_paths(n) for n in names}
        for i, name in enumerate(names):
            self.am(dest, os.path.join(self.patches_dir, name),
                    "patches/" + name)
            paths = owned.get(name, [])
            if paths:
                for path in paths:
                    self.write_overlay_at(dest, path, i, names, touches)
                git(dest, "add", "--", *paths)
                git(dest, "commit", "-q", "--amend", "--no-edit",
                    "--no-verify")

    def prepare(self, dest):
        """Pristine + the series, a commit per patch, as exported."""
        self.check_overlay()
        self.new_tree(dest)
        self.build_commits(dest)

    def prepare_pristine(self, dest):
        """Pristine plus only the build adjustments of the first patch."""
        names = self.patch_names()
        self.new_tree(dest)
        if names:
            self.am(dest, os.path.join(self.patches_dir, names[0]),
                    "patches/" + names[0])

    def overlay_hashes(self):
        hashes = {}
        for path in self.overlay_tree_files():
            with open(os.path.join(self.overlay_dir, path), "rb") as f:
                hashes[path] = hashlib.sha256(f.read()).hexdigest()
        return hashes

    def edit(self, dest):
        """Each commit = one patch plus the overlay files it adds."""
        self.check_overlay()
        self.new_tree(dest)
        # What the overlay looked like, so that save can tell edits made
        # in the repository meanwhile (which it would otherwise clobber).
        with open(os.path.join(dest, ".git", "qkm-overlay-base.json"),
                  "w", encoding="utf-8") as f:
            json.dump(self.overlay_hashes(), f, sort_keys=True, indent=0)
        self.build_commits(dest)

    def save(self, src):
        """Split an edit tree back into patches/ and the overlay."""
        upstream = self.upstream_files()
        commits = git(src, "rev-list", "--reverse", "upstream..HEAD"
                      ).stdout.split()
        if git(src, "status", "--porcelain", "--untracked-files=no"
               ).stdout.strip():
            raise SeriesError("%s has uncommitted changes; commit them "
                              "first" % src)
        base_path = os.path.join(src, ".git", "qkm-overlay-base.json")
        if os.path.exists(base_path):
            with open(base_path, encoding="utf-8") as f:
                base = json.load(f)
            now = self.overlay_hashes()
            changed = []
            for p in sorted(set(base) | set(now)):
                if base.get(p) == now.get(p):
                    continue
                r = git(src, "show", "HEAD:" + p, check=False)
                in_tree = (hashlib.sha256(r.stdout.encode()).hexdigest()
                           if r.returncode == 0 else None)
                if now.get(p) != in_tree:
                    changed.append(p)
            if changed:
                raise SeriesError(
                    "overlay files changed in the repository since the work "
                    "tree was made, and saving would overwrite them: %s.  "
                    "Copy the changes into %s (and commit them there), or "
                    "undo them in the repository" % (", ".join(changed), src))
        with tempfile.TemporaryDirectory() as tmp:
            new_names = []
            owners = []
            added = set()
            for i, c in enumerate(commits, 1):
                changed = git(src, "diff-tree", "--no-commit-id", "-r",
                              "--name-status", "--no-renames", c + "^", c
                              ).stdout.splitlines()
                subject = git(src, "log", "-1", "--format=%s", c
                              ).stdout.strip()
                stored = []
                for line in changed:
                    status, path = line.split("\t", 1)
                    if path in upstream:
                        stored.append(path)
                    elif status == "A":
                        # Stored whole, as the overlay file; its owner
                        # adds it in the export.
                        owners.append((path, None, i))
                        added.add(path)
                    elif status == "D":
                        raise SeriesError(
                            "commit %d (%s) deletes %s, which an earlier "
                            "commit adds: drop it from that commit "
                            "instead" % (i, subject, path))
                    else:
                        # A change to a file an earlier commit added:
                        # stored in this patch, as a diff.
                        stored.append(path)
                if not stored:
                    raise SeriesError(
                        "commit %d (%s) changes no upstream file and no "
                        "file an earlier commit added: fold the new files "
                        "it adds into the patch that first uses them" %
                        (i, subject))
                out = git(src, "format-patch", "-1", c, "-o", tmp,
                          "--start-number", str(i), *STORE_OPTS,
                          "--", *stored).stdout.strip()
                new_names.append(os.path.basename(out))
            # Overlay files are taken whole from the final tree.
            final = set(git(src, "ls-tree", "-r", "--name-only", "HEAD"
                            ).stdout.splitlines()) - upstream
            owner_of = {}
            for path, _, i in owners:
                owner_of.setdefault(path, new_names[i - 1])
            lost = sorted(p for p in final if p not in owner_of)
            if lost:
                raise SeriesError("files not added by any commit: %s" %
                                  ", ".join(lost))
            bad = sorted(p for p in final
                         if not p.startswith(tuple(r + "/"
                                                   for r in OVERLAY_ROOTS)))
            if bad:
                raise SeriesError("new files outside the overlay roots "
                                  "(%s): %s" % (", ".join(OVERLAY_ROOTS),
                                                ", ".join(bad)))

            # Write back: patches, series, overlay map, overlay files.
            for old in self.patch_names():
                os.unlink(os.path.join(self.patches_dir, old))
            for n in new_names:
                shutil.copyfile(os.path.join(tmp, n),
                                os.path.join(self.patches_dir, n))
            write_series(self.patches_dir, new_names)
            order = {n: k for k, n in enumerate(new_names)}
            entries = sorted(((p, owner_of[p]) for p in final),
                             key=lambda e: (order[e[1]], e[0]))
            write_overlay_map(self.patches_dir, entries)
            for path in self.overlay_tree_files():
                if path not in final:
                    os.unlink(os.path.join(self.overlay_dir, path))
            for path in final:
                data = git(src, "show", "HEAD:" + path).stdout
                mode = git(src, "ls-tree", "HEAD", "--", path
                           ).stdout.split()[0]
                dst = os.path.join(self.overlay_dir, path)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with open(dst, "w", encoding="utf-8", newline="") as f:
                    f.write(data)
                os.chmod(dst, 0o755 if mode == "100755" else 0o644)
        if os.path.exists(base_path):
            with open(base_path, "w", encoding="utf-8") as f:
                json.dump(self.overlay_hashes(), f, sort_keys=True, indent=0)
        return new_names

    def export(self, dest, topic=None):
        """A numbered, mailable series with a cover letter.

        With @topic, only that topic's patches, numbered from 1, and a
        cover letter that names the topic it must be applied on.  With
        @topic "all", every topic into a directory of its name in @dest.
        """
        topics = self.topics()
        if topic == "all":
            todo = [(os.path.join(dest, t["name"]), t) for t in topics]
        else:
            todo = [(dest, self.topic(topic, topics) if topic else None)]
        with tempfile.TemporaryDirectory() as tmp:
            tree = os.path.join(tmp, "tree")
            self.edit(tree)
            if os.path.exists(dest):
                shutil.rmtree(dest)
            for d, t in todo:
                self.export_from(tree, d, t, topics)
        if topic == "all":
            return sorted(os.path.join(t["name"], n)
                          for _, t in todo
                          for n in os.listdir(os.path.join(dest, t["name"])))
        return sorted(os.listdir(dest))

    def export_from(self, tree, dest, t, topics):
        os.makedirs(dest)
        # The cover letter is from the series' author, not the script.
        author = git(tree, "log", "-1", "--format=%an%n%ae", "HEAD"
                     ).stdout.splitlines()
        env = {}
        if len(author) == 2:
            env = {"GIT_COMMITTER_NAME": author[0],
                   "GIT_COMMITTER_EMAIL": author[1]}
        commits = git(tree, "rev-list", "--reverse", "upstream..HEAD"
                      ).stdout.split()
        if t:
            rng = "%s^..%s" % (commits[t["first"] - 1],
                               commits[t["last"] - 1])
        else:
            rng = "upstream..HEAD"
        git(tree, "format-patch", rng, "-o", dest,
            "--cover-letter", "--numbered", "--zero-commit",
            "--no-signature", "--abbrev=12", "--no-renames",
            "--stat=80", env=env)
        cover = os.path.join(self.patches_dir, "cover-letter")
        if t:
            cover += "." + t["name"]
        subject, blurb = "QEMU/KVM guest-memory patch set", ""
        if os.path.exists(cover):
            with open(cover, encoding="utf-8") as f:
                text = f.read().strip("\n")
            if t:
                # A topic's subject is its title; the file is the blurb.
                blurb = text
            else:
                subject, _, blurb = text.partition("\n")
                blurb = blurb.strip("\n")
        if t:
            subject = t["title"]
        blurb += "\n\n" + self.topic_note(t, topics)
        cl = [n for n in os.listdir(dest) if n.startswith("0000-")][0]
        path = os.path.join(dest, cl)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("*** SUBJECT HERE ***", subject)
        text = text.replace("*** BLURB HERE ***", blurb)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def topic_note(self, t, topics):
        """The cover letter's paragraph on what the series applies to."""
        if t is None:
            if len(topics) < 2:
                text = "It applies to QEMU %s." % UPSTREAM_VERSION
            else:
                parts = ["%s (%s, patches %d-%d%s)" %
                         (x["name"], x["title"], x["first"], x["last"],
                          ", based on " + x["based_on"] if x["based_on"]
                          else "") for x in topics]
                text = ("It applies to QEMU %s.  It is also sent as topic "
                        "series: %s." % (UPSTREAM_VERSION, "; ".join(parts)))
        elif t["based_on"] is None:
            text = "It applies to QEMU %s on its own." % UPSTREAM_VERSION
        else:
            chain = [t]
            while chain[0]["based_on"]:
                chain.insert(0, self.topic(chain[0]["based_on"], topics))
            dep = chain[-2]
            order = ", ".join('"%s"' % c["name"] for c in chain[:-1])
            text = ("Based on the \"%s\" series (%s), which must be "
                    "applied first: applied in order, the %s and \"%s\" "
                    "series apply to QEMU %s." %
                    (dep["name"], dep["title"], order, t["name"],
                     UPSTREAM_VERSION))
        return textwrap.fill(text, width=72, break_on_hyphens=False)

def check_patch_format(path, name):
    """Subject 'subsystem: summary', a body, and Signed-off-by."""
    problems = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, sep, _ = text.partition("\n---\n")
    if not sep:
        return ["%s: no '---' separator: not a git-format patch" % name]
    lines = head.split("\n")
    subject = None
    body_start = None
    for i, line in enumerate(lines):
        if line.startswith("Subject: "):
            subject = line[len("Subject: "):]
            j = i + 1
            while j < len(lines) and lines[j].startswith(" "):
                subject += lines[j]
                j += 1
        if line == "" and body_start is None:
            body_start = i + 1
    if subject is None:
        return ["%s: no Subject: header" % name]
    subject = re.sub(r"^\[PATCH[^\]]*\] ", "", subject)
    if not SUBJECT_RE.match(subject):
        problems.append("%s: subject %r is not 'subsystem: summary'" %
                        (name, subject))
    body = lines[body_start:] if body_start is not None else []
    sob = [l for l in body if l.startswith("Signed-off-by: ")]
    if not sob:
        problems.append("%s: no Signed-off-by: line" % name)
    for l in sob:
        if not re.match(r"^Signed-off-by: [^<>]+ <[^@<>\s]+@[^<>\s]+>$", l):
            problems.append("%s: malformed %r" % (name, l))
    prose = [l for l in body
             if l.strip() and not re.match(r"^[A-Z][A-Za-z-]+: ", l)]
    if not prose:
        problems.append("%s: no body explaining the change" % name)
    if "\ndiff --git " not in text:
        problems.append("%s: no diff" % name)
    return problems


def write_series(patches_dir, names):
    with open(os.path.join(patches_dir, "series"), "w",
              encoding="utf-8") as f:
        f.write("# The patches to upstream QEMU 10.2.2, in order.  Written "
                "by\n# 'scripts/series.py save'; see README.md.\n")
        for n in names:
            f.write(n + "\n")


def write_overlay_map(patches_dir, entries):
    with open(os.path.join(patches_dir, "overlay-files"), "w",
              encoding="utf-8") as f:
        f.write("# Overlay files and the patch that adds each of them in "
                "the exported\n# series.  Written by 'scripts/series.py "
                "save'; see README.md.\n")
        width = max([len(p) for p, _ in entries] + [0])
        for path, patch in entries:
            f.write("%-*s %s\n" % (width, path, patch))


def tree_id(repo):
    return git(repo, "rev-parse", "HEAD^{tree}").stdout.strip()


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patches", default=os.path.join(top, "patches"))
    ap.add_argument("--overlay", default=os.path.join(top, "qemu"),
                    help="the directory holding the overlay roots")
    ap.add_argument("--upstream-repo",
                    default=os.environ.get("QKM_UPSTREAM_REPO"),
                    help="git repository whose tag 'upstream' is pristine")
    ap.add_argument("--topic", help="export: only this topic")
    ap.add_argument("command")
    ap.add_argument("dir", nargs="?")
    a = ap.parse_intermixed_args()
    s = Series(a.patches, a.overlay, a.upstream_repo or "")
    needs_dir = ("prepare", "prepare-pristine", "edit", "save", "export",
                 "tree-id")
    if a.command in needs_dir and not a.dir:
        ap.error("%s needs a directory" % a.command)
    if a.command in ("prepare", "prepare-pristine", "edit", "save",
                     "export") and not a.upstream_repo:
        ap.error("--upstream-repo (or QKM_UPSTREAM_REPO) is required")
    try:
        if a.command == "prepare":
            s.prepare(a.dir)
        elif a.command == "prepare-pristine":
            s.prepare_pristine(a.dir)
        elif a.command == "edit":
            s.edit(a.dir)
        elif a.command == "save":
            for n in s.save(a.dir):
                print("patches/" + n)
        elif a.command == "export":
            for n in s.export(a.dir, a.topic):
                print(os.path.join(a.dir, n))
        elif a.command == "topics":
            for t in s.topics():
                print("%s %s %d %d %s" % (t["name"], t["based_on"] or "-",
                                          t["first"], t["last"], t["title"]))
        elif a.command == "check-format":
            s.check_format()
        elif a.command == "check-overlay":
            s.check_overlay()
        elif a.command == "tree-id":
            print(tree_id(a.dir))
        else:
            ap.error("unknown command %r" % a.command)
    except SeriesError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
