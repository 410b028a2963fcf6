"""The doc runner (scripts/run-docs) against pages written to fail it: every way a page can be wrong is reported with
its page and line, and what a page may legitimately vary is not. Run by scripts/test before the runner itself:

    python3 -m unittest scripts/test_run_docs.py
"""

import importlib.machinery
import importlib.util
import subprocess
import tempfile
import textwrap
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
_loader = importlib.machinery.SourceFileLoader("run_docs", str(HERE / "run-docs"))
_spec = importlib.util.spec_from_loader("run_docs", _loader)
run_docs = importlib.util.module_from_spec(_spec)
_loader.exec_module(run_docs)

BINARY = run_docs.REPO / "target/debug/draftstore"
FENCE = "```"


def setUpModule():
    subprocess.run(["cargo", "build", "--quiet", "--locked", "-p", "draftstore", "--bin", "draftstore"],
                   cwd=run_docs.REPO, check=True)


class Pages(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)

    def page(self, text):
        path = Path(self.folder.name) / "page.md"
        path.write_text(textwrap.dedent(text).replace("'''", FENCE))
        return str(path)

    def blocks(self, text):
        return [b for b in run_docs.blocks_of(self.page(text)) if b.lang in run_docs.SHELLS]

    def run_page(self, text):
        """Runs the page's one shell block; the failure's message, or None when it passed."""
        (block,) = self.blocks(text)
        try:
            run_docs.run_block(block, BINARY)
        except (run_docs.Failure, run_docs.PageError) as e:
            return str(e)
        return None


class Marks(Pages):
    def test_an_unmarked_shell_block_fails_with_its_page_and_line(self):
        with self.assertRaisesRegex(run_docs.PageError, r"page\.md:3: a bash block marked neither"):
            self.blocks("""\
                # A page

                '''bash
                rm -rf /
                '''
                """)

    def test_a_skip_without_a_reason_is_no_mark(self):
        with self.assertRaisesRegex(run_docs.PageError, "marked neither"):
            self.blocks("'''console skip:\n$ true\n'''\n")

    def test_an_unknown_option_is_refused(self):
        with self.assertRaisesRegex(run_docs.PageError, "unknown option `fast`"):
            self.blocks("'''bash runnable fast\ntrue\n'''\n")

    def test_a_skipped_block_keeps_its_reason_and_other_languages_need_no_mark(self):
        blocks = run_docs.blocks_of(self.page("'''bash skip: needs a cluster\nkubectl apply\n'''\n'''python\nx = 1\n'''\n"))
        self.assertEqual([(b.lang, b.skip, b.runnable) for b in blocks],
                         [("bash", "needs a cluster", False), ("python", None, False)])

    def test_output_shown_away_from_a_command_is_refused(self):
        (block,) = self.blocks("'''bash runnable\ntrue\n\n# → ok\n'''\n")
        with self.assertRaisesRegex(run_docs.PageError, r"page\.md:4: `# →` shows output"):
            run_docs.commands_of_bash(block.body, block)

    def test_a_command_that_never_ends_is_refused(self):
        (block,) = self.blocks("'''bash runnable\necho 'open quote\n'''\n")
        with self.assertRaisesRegex(run_docs.PageError, r"page\.md:2: the command here never ends"):
            run_docs.commands_of_bash(block.body, block)


class Output(unittest.TestCase):
    def test_an_ellipsis_stands_for_text_within_a_line(self):
        self.assertTrue(run_docs.matches(['{"id":"set_…","ok":true}'], ['{"id":"set_9f2c","ok":true}']))
        self.assertFalse(run_docs.matches(['{"id":"set_…","ok":true}'], ['{"id":"set_9f2c","ok":false}']))
        self.assertFalse(run_docs.matches(["a…"], ["a", "b"]), "within a line only")

    def test_a_line_of_ellipsis_stands_for_any_lines(self):
        self.assertTrue(run_docs.matches(["first", "…", "last"], ["first", "last"]))
        self.assertTrue(run_docs.matches(["first", "…", "last"], ["first", "x", "y", "last"]))
        self.assertFalse(run_docs.matches(["first", "…", "last"], ["first", "x", "lost"]))

    def test_nothing_shown_means_nothing_printed(self):
        self.assertTrue(run_docs.matches([], []))
        self.assertFalse(run_docs.matches([], ["something"]))


class Running(Pages):
    def test_a_command_that_fails_fails_the_block_at_its_line(self):
        failure = self.run_page("'''bash runnable\ntrue\nls no-such-file\necho never\n'''\n")
        self.assertRegex(failure, r"page\.md:3: this command exited with 2")
        self.assertIn("ls no-such-file", failure)
        self.assertIn("No such file", failure)

    def test_output_other_than_the_page_shows_fails_with_both(self):
        failure = self.run_page("'''bash runnable\necho 'hello, world'\n# → hello, draft\n'''\n")
        self.assertRegex(failure, r"page\.md:2: this command printed something else")
        self.assertRegex(failure, r"expected:\n    hello, draft\n  got:\n    hello, world")

    def test_a_console_command_that_prints_what_the_page_does_not_show_fails(self):
        failure = self.run_page("'''console runnable\n$ echo surprise\n$ echo shown\nshown\n'''\n")
        self.assertRegex(failure, r"page\.md:2: this command printed something else")

    def test_a_command_that_fails_on_purpose_shows_its_status(self):
        self.assertIsNone(self.run_page("'''console runnable\n$ ls no-such-file 2> /dev/null; echo $?\n2\n'''\n"))

    def test_the_documented_port_reaches_the_server_started_for_the_block(self):
        self.assertIsNone(self.run_page("""\
            '''bash runnable
            curl -s localhost:8080/health
            # → {"status":"ok"}
            draftstore ls
            # → NAME  SIZE  TYPE  EXPIRES
            '''
            """))

    def test_a_block_that_starts_its_own_server_gets_it_on_the_documented_port(self):
        self.assertIsNone(self.run_page("""\
            '''bash runnable
            AUTH_MODE=api-key API_KEYS=alice:$(printf '0%.0s' {1..64}) cargo run --release -- serve
            curl -s -o /dev/null -w '%{http_code}' -X POST localhost:8080/api/v1/list-drafts -d '{}'
            # → 401
            '''
            """))

    def test_a_server_that_does_not_start_fails_with_its_message(self):
        failure = self.run_page("'''bash runnable\nUPLOAD_TTL=abc draftstore serve\n'''\n")
        self.assertRegex(failure, r"page\.md:2: this command exited with 2")
        self.assertIn("error: UPLOAD_TTL: 'abc' is not a number of seconds", failure)

    def test_setup_prepares_what_the_prose_says_and_is_not_compared(self):
        self.assertIsNone(self.run_page("""\
            <!-- setup: a draft to list
            echo hello > hello.txt
            draftstore upload hello.txt --name docs/hello.txt
            -->
            '''console runnable
            $ draftstore ls docs/ | cut -c1-14
            NAME
            docs/hello.txt
            '''
            """))

    def test_a_failing_setup_is_named_as_the_setup(self):
        failure = self.run_page("<!-- setup: nothing\nfalse\n-->\n'''bash runnable\ntrue\n'''\n")
        self.assertRegex(failure, r"page\.md:2: the setup exited with 1")

    def test_cargo_runs_only_what_the_runner_stands_in_for(self):
        failure = self.run_page("'''bash runnable\ncargo test\n'''\n")
        self.assertRegex(failure, r"page\.md:2: this command exited with 127")
        self.assertIn("only `cargo run --release -- …`", failure)


if __name__ == "__main__":
    unittest.main()
