"""``scrapy export graph|tweets|diff``: research files from a crawl's buckets.

    scrapy export graph  --bucket friend_ids [--bucket followers …] --format csv|graphml|gexf -o FILE [--job JOB …]
    scrapy export graph  --bucket search [--edges retweet,quote,reply,mention] --format … -o FILE
    scrapy export cascade [--job JOB] --format graphml|gexf|csv|jsonl -o FILE     (the cascades bucket)
    scrapy export tweets --bucket timelines [--bucket search …] --format jsonl|csv -o FILE [--job JOB …]
    scrapy export ids    --bucket quotes [-o FILE] [--job JOB …]
    scrapy export diff JOB_A JOB_B [--bucket friend_ids …] [-o FILE]

Pages are read from ``<TWEETFORM_OUTPUT_DIR>/<bucket>/`` (``--data`` to read
another directory) in every form they can be in — ``.jsonl``, ``.jsonl.gz``
and ``scrapy archive``'s ``.tar.gz`` — and from any files named after the
options. Every job's pages are read (each page once per job) unless ``--job``
names the jobs to read. ``graph`` of a tweet bucket (no follow lists in it, or
``--edges`` given) is the user network of its retweets, quotes, replies and
mentions (:mod:`tweetform.export.tweet_network`). ``diff`` writes the follow edges added and removed
between two jobs as CSV (``change,source,target``; stdout without ``-o``) and a
summary line on stderr; without ``--bucket`` it reads every bucket. A problem
stops the command with one line on stderr (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand

from tweetform.commands.errors import one_line_errors

if TYPE_CHECKING:
    from tweetform.export.files import ReadStats

# Scrapy imports every command module on every start (COMMANDS_MODULE): the export modules are imported
# by the functions that use them (tests/test_startup.py)

KINDS = {"graph": ("graphml", "csv", "gexf"), "cascade": ("graphml", "gexf", "csv", "jsonl"), "tweets": ("jsonl", "csv"), "ids": ("txt",), "diff": ("csv",)}


class ExportError(Exception):
    """A problem with the export's arguments or inputs; the message is the one line shown."""


def input_files(data_dir: Path, buckets: list[str], paths: list[str]) -> list[Path]:
    from tweetform.export.files import bucket_files
    from tweetform.spiders.arguments import BUCKET

    files: list[Path] = []
    for name in buckets:
        if not BUCKET.match(name):
            raise ExportError(f"bucket {name!r} must be a plain word of letters, digits, _ or -")
        found = bucket_files(data_dir, name)
        if not found:
            raise ExportError(f"bucket {name!r} has no files under {data_dir}")
        files += found
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += [p for p in sorted(path.iterdir()) if p.name.endswith((".jsonl", ".jsonl.gz", ".tar.gz"))]
        elif path.is_file():
            files.append(path)
        else:
            raise ExportError(f"{raw} does not exist")
    if not files:
        raise ExportError("nothing to export: give --bucket NAME (or files)")
    return files


def _no_pages_of(jobs: list[str] | None, stats: ReadStats) -> None:
    missing = [j for j in jobs or () if j not in stats.jobs]
    if missing:
        raise ExportError(f"no pages of job {missing[0]!r} in the files read")


def export_graph(files: list[Path], fmt: str, output: Path, jobs: list[str] | None = None,
                 edges: str | None = None) -> str:
    """The follow network of friends/followers/list pages or, from tweets (or with ``edges``),
    the user network of retweets, quotes, replies and mentions (:mod:`tweetform.export.tweet_network`)."""
    from tweetform.export.files import ReadStats, iter_pages
    from tweetform.export.graph import GraphBuilder, write_graph
    from tweetform.export.tweet_network import TweetNetwork, parse_kinds

    try:
        kinds = parse_kinds(edges)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    stats = ReadStats()
    builder, network = GraphBuilder(), TweetNetwork(kinds)
    for page in iter_pages(files, stats, jobs):
        if edges is None:
            builder.add_page(page)
        network.add_page(page)
    _no_pages_of(jobs, stats)
    if edges is None and builder.list_pages:
        written = write_graph(builder.graph, output, fmt)
        s = builder.summary()
        return (f"wrote {s.edges:,} edges between {s.nodes:,} accounts ({s.with_attributes:,} with screen names, "
                f"{s.with_counts:,} with counts) from {s.list_pages:,} list pages and {s.user_pages:,} user pages "
                f"to {', '.join(map(str, written))}"
                + (f"; {stats.duplicates:,} duplicate pages skipped" if stats.duplicates else ""))
    if not network.tweets:
        raise ExportError(f"no friends/followers pages and no tweets in {stats.pages} pages read: "
                          "is it a follow-network or a tweet bucket?")
    return export_tweet_network(network, fmt, output)


def export_tweet_network(network: Any, fmt: str, output: Path) -> str:
    from tweetform.export.tweet_network import write_network

    graph = network.graph()
    written = write_network(graph, output, fmt)
    by_kind = Counter(kind for _, _, kind in graph.edges(keys=True))
    kinds = ", ".join(f"{by_kind[k]:,} {k}" for k in network.kinds)
    return (f"wrote {graph.number_of_edges():,} edges ({kinds}) between {graph.number_of_nodes():,} users "
            f"from {len(network.tweets):,} tweets to {', '.join(map(str, written))}"
            + (f"; {network.unresolved:,} retweets or quotes whose original's author no page names left out"
               if network.unresolved else "")
            + (f"; {network.duplicates:,} tweets read twice counted once" if network.duplicates else ""))


def export_cascade(files: list[Path], fmt: str, output: Path, jobs: list[str] | None = None) -> str:
    """The tree of a cascade job (:mod:`tweetform.export.cascade`)."""
    from tweetform.export.cascade import CascadeBuilder, write_cascade
    from tweetform.export.files import ReadStats, iter_pages

    stats = ReadStats()
    builder = CascadeBuilder().add_pages(iter_pages(files, stats, jobs))
    _no_pages_of(jobs, stats)
    if not builder.posts:
        raise ExportError(f"no cascade posts in {stats.pages} pages read: is it the cascades bucket?")
    graph = builder.graph()
    written = write_cascade(graph, output, fmt)
    missing = sum(1 for _, d in graph.nodes(data=True) if d.get("parent_missing"))
    return (f"wrote {len(builder.posts):,} posts, {len(builder.users):,} users and {graph.number_of_edges():,} edges "
            f"to {', '.join(map(str, written))}" + (f"; {missing:,} nodes whose parent was not collected" if missing else ""))


def export_tweets(files: list[Path], fmt: str, output: Path, jobs: list[str] | None = None) -> str:
    from tweetform.export.files import ReadStats, iter_pages, open_text_output
    from tweetform.export.tweets import TweetWriter

    stats = ReadStats()
    with open_text_output(output) as fh:
        writer = TweetWriter(fh, fmt).add_pages(iter_pages(files, stats, jobs))
    try:
        _no_pages_of(jobs, stats)
    except ExportError:
        output.unlink(missing_ok=True)
        raise
    if not writer.written and not writer.seen:
        output.unlink(missing_ok=True)
        raise ExportError(f"no tweets in {stats.pages} pages read: is it a timeline, search or tweets bucket?")
    versions = " and ".join("Bluesky" if v == "bluesky" else f"v{v}" for v in sorted(writer.versions))
    return (f"wrote {writer.written:,} tweets ({versions} pages) to {output}"
            + (f"; {writer.duplicates:,} duplicate tweets skipped" if writer.duplicates else ""))


def export_ids(files: list[Path], output: Path | None, jobs: list[str] | None = None) -> str:
    """Dehydrate: the ids of the bucket's objects, one per line (to ``output``, or stdout)."""
    from tweetform.export.files import ReadStats, iter_pages, open_text_output
    from tweetform.export.ids import write_ids

    stats = ReadStats()
    if output is None:
        written, duplicates = write_ids(iter_pages(files, stats, jobs), sys.stdout)
        sys.stdout.flush()
    else:
        with open_text_output(output) as fh:
            written, duplicates = write_ids(iter_pages(files, stats, jobs), fh)
    _no_pages_of(jobs, stats)
    return (f"wrote {written:,} ids from {stats.pages:,} pages to {output or 'stdout'}"
            + (f"; {duplicates:,} repeated ids written once" if duplicates else ""))


def export_diff(files: list[Path], first: str, second: str, output: Path | None) -> str:
    """Write the edge changes (to ``output``, or stdout); returns the summary line."""
    from tweetform.export.diff import diff_jobs, write_diff
    from tweetform.export.files import ReadStats, iter_pages, open_text_output

    stats = ReadStats()
    result = diff_jobs(iter_pages(files, stats, [first, second]), first, second)
    _no_pages_of([first, second], stats)
    if not result.compared:
        raise ExportError(f"jobs {first!r} and {second!r} crawled no follow list in common")
    if output is None:
        write_diff(result, sys.stdout)
        sys.stdout.flush()
    else:
        with open_text_output(output) as fh:
            write_diff(result, fh)
    return result.summary(first, second)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return ("graph|tweets|cascade --bucket NAME [--bucket NAME …] --format FORMAT -o FILE [--job JOB …] [FILE …]"
                " | ids --bucket NAME [-o FILE]"
                " | diff JOB_A JOB_B [--bucket NAME …] [-o FILE]")

    def short_desc(self) -> str:
        return "Export the follow network or a tweet bucket's user network (csv, graphml, gexf), tweets (jsonl, csv), or the edges changed between two jobs"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--bucket", action="append", default=[], metavar="NAME",
                            help="a bucket to read (repeatable); graph: friend_ids, followers, users, errors, … "
                                 "or a tweet bucket (timelines, search, …)")
        parser.add_argument("--format", dest="export_format", metavar="FORMAT",
                            help="graph: graphml (default), csv or gexf; tweets: jsonl (default) or csv")
        parser.add_argument("-o", "--output", dest="export_output", metavar="FILE", help="the file to write")
        parser.add_argument("--edges", metavar="KINDS",
                            help="graph of a tweet bucket: retweet,quote,reply,mention (default: all four)")
        parser.add_argument("--data", metavar="DIR", help="where the buckets are (default TWEETFORM_OUTPUT_DIR)")
        parser.add_argument("--job", dest="jobs", action="append", default=[], metavar="JOB",
                            help="only this job's pages (repeatable; default: every job, each page once per job)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        from tweetform.spiders.arguments import JOB

        try:
            if not args or args[0] not in KINDS:
                raise ExportError("say what to export: `scrapy export graph …`, `scrapy export tweets …`, `scrapy export ids …`, `scrapy export cascade …` "
                                  "or `scrapy export diff JOB_A JOB_B`")
            for job in opts.jobs:
                if not JOB.match(job):
                    raise ExportError(f"job {job!r} must be 1-80 letters, digits, _, . or -")
            if args[0] == "diff":
                message = self.diff(args[1:], opts)
                print(message, file=sys.stderr)
                return
            if args[0] == "ids":
                output = Path(opts.export_output) if opts.export_output else None
                if output is not None and not output.parent.is_dir():
                    raise ExportError(f"the directory of {output} does not exist")
                data_dir = Path(opts.data or self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
                message = export_ids(input_files(data_dir, opts.bucket, args[1:]), output, opts.jobs or None)
                print(message, file=sys.stderr)
                return
            kind, paths = args[0], args[1:]
            formats = KINDS[kind]
            fmt = (opts.export_format or formats[0]).lower()
            if fmt not in formats:
                raise ExportError(f"{kind} exports as {', '.join(formats)}, not {fmt!r}")
            if not opts.export_output:
                raise ExportError("give the file to write with -o FILE")
            output = Path(opts.export_output)
            if not output.parent.is_dir():
                raise ExportError(f"the directory of {output} does not exist")
            data_dir = Path(opts.data or self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
            files = input_files(data_dir, opts.bucket or (["cascades"] if kind == "cascade" and not paths else []), paths)
            if kind == "cascade":
                message = export_cascade(files, fmt, output, opts.jobs or None)
            elif kind == "graph":
                message = export_graph(files, fmt, output, opts.jobs or None, opts.edges)
            else:
                if opts.edges:
                    raise ExportError("--edges is an option of export graph")
                message = export_tweets(files, fmt, output, opts.jobs or None)
        except (ExportError, OSError) as exc:
            print(f"tweetform: {exc}", file=sys.stderr)
            self.exitcode = 2
            return
        print(message)

    def diff(self, args: list[str], opts: argparse.Namespace) -> str:
        assert self.settings is not None
        from tweetform.export.archive import buckets_in
        from tweetform.export.files import bucket_files
        from tweetform.spiders.arguments import JOB

        if len(args) != 2:
            raise ExportError("give the two jobs to compare: `scrapy export diff JOB_A JOB_B`")
        for job in args:
            if not JOB.match(job):
                raise ExportError(f"job {job!r} must be 1-80 letters, digits, _, . or -")
        if opts.jobs:
            raise ExportError("diff takes its two jobs as arguments, not --job")
        output = Path(opts.export_output) if opts.export_output else None
        if output is not None and not output.parent.is_dir():
            raise ExportError(f"the directory of {output} does not exist")
        data_dir = Path(opts.data or self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
        if opts.bucket:
            files = input_files(data_dir, opts.bucket, [])
        else:
            files = [f for b in buckets_in(data_dir) if b != "errors" for f in bucket_files(data_dir, b)]
            if not files:
                raise ExportError(f"no bucket files under {data_dir}")
        return export_diff(files, args[0], args[1], output)
