//! The console's HTML: minijinja templates compiled into the program, with HTML
//! autoescaping on for every template, so text from messages is always text.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("domains.html", include_str!("templates/domains.html")),
    ("queues.html", include_str!("templates/queues.html")),
    ("listing.html", include_str!("templates/listing.html")),
    ("message.html", include_str!("templates/message.html")),
    ("outcome.html", include_str!("templates/outcome.html")),
    ("problem.html", include_str!("templates/problem.html")),
    ("help.html", include_str!("templates/help.html")),
];

pub const STYLE_CSS: &str = include_str!("static/style.css");
pub const LIVE_JS: &str = include_str!("static/live.js");

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new() -> Pages {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
        }
        Pages { env }
    }

    /// Renders a page; a template error is a bug, shown as text rather than hidden.
    pub fn render(&self, name: &str, context: impl Serialize) -> String {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .unwrap_or_else(|e| format!("template {name} failed: {e:#}"))
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes() {
        let pages = Pages::new();
        let html = pages.render(
            "problem.html",
            minijinja::context! { title => "t", heading => "<h>", message => "<script>x</script>" },
        );
        assert!(
            html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>x"));
    }
}
