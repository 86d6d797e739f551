//! The reports, from the Markdown the terminal prints, as HTML. Raw HTML in the text (a
//! room name, say) is shown as text, never as markup.

use pulldown_cmark::{html::push_html, Event, Options, Parser};

/// `markdown` as HTML, any HTML in it escaped.
pub fn html(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        other => other,
    });
    let mut out = String::new();
    push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_in_the_text_stays_text() {
        let out = super::html("# Room <script>alert(1)</script>\n\n<img src=x onerror=y>\n\n| a |\n|---|\n| <b>1</b> |\n");
        assert!(!out.contains("<script") && !out.contains("<img") && !out.contains("<b>"));
        assert!(out.contains("&lt;script&gt;") && out.contains("<table>"));
    }
}
