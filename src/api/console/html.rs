//! HTML building blocks: escaping and the page frame. Every value from the API or the user
//! goes through [`esc`]; there is no inline script or style (the CSP forbids both).

use std::fmt::Write as _;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The console's pages in navigation order: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/console/roles", "Roles"),
    ("/console/assignments", "Assignments"),
    ("/console/groups", "Groups"),
    ("/console/units", "Administrative units"),
    ("/console/principals", "Principals"),
    ("/console/check", "Check access"),
    ("/console/who-can", "Who can"),
    ("/console/changes", "Change log"),
];

/// Escapes text for an element's content or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Who is signed in, for the frame: their label and the CSRF token of the sign-out form.
pub struct Frame<'a> {
    /// The signed-in user's label.
    pub label: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The current page's nav path.
    pub active: &'a str,
}

/// A whole page.
pub fn page(status: StatusCode, title: &str, frame: Option<&Frame<'_>>, body: &str) -> Response {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Rolecall console</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a><header><span class=\"brand\">Rolecall</span>",
        esc(title)
    );
    if let Some(frame) = frame {
        out.push_str("<nav aria-label=\"Console\"><ul>");
        for (path, label) in NAV {
            let current = if *path == frame.active {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<li><a href=\"{path}\"{current}>{label}</a></li>");
        }
        let _ = write!(
            out,
            "</ul></nav><form class=\"signout\" method=\"post\" action=\"/console/signout\">\
             {}<span class=\"who\">{}</span> <button type=\"submit\">Sign out</button></form>",
            csrf_field(frame.csrf),
            esc(frame.label)
        );
    }
    let _ = write!(
        out,
        "</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        out,
    )
        .into_response()
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// An error shown in place (a live region, so screen readers hear it).
pub fn error_box(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(message))
    }
}

/// A labelled text input with its error slot (`err-{name}`).
pub fn text_input(name: &str, label: &str, value: &str, error: &str, extra: &str) -> String {
    let invalid = if error.is_empty() {
        ""
    } else {
        " aria-invalid=\"true\""
    };
    format!(
        "<div class=\"field\"><label for=\"f-{name}\">{label}</label>\
         <input id=\"f-{name}\" name=\"{name}\" value=\"{}\" aria-describedby=\"err-{name}\"{invalid} {extra}>\
         <span class=\"field-error\" id=\"err-{name}\" aria-live=\"polite\">{}</span></div>",
        esc(value),
        esc(error)
    )
}
