//! Text from a server (session names, images, error details) on its way to a terminal: control
//! characters are shown escaped, so a hostile name cannot move the cursor, recolour the screen,
//! set the window title, or reorder what the user reads (bidirectional overrides).

/// Whether `c` must not reach a terminal raw: C0/C1 controls, DEL, and the bidirectional
/// embedding/override/isolate characters.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character written as a visible escape (`\u{1b}`); newlines are kept
/// only when `multiline`.
pub fn clean(s: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (multiline && c == '\n') || !is_unsafe_char(c) {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// One line of server text for a terminal (no newline survives).
pub fn clean_line(s: &str) -> String {
    clean(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_text_kept() {
        assert_eq!(clean_line("s1"), "s1");
        assert_eq!(clean_line("日本語-ü"), "日本語-ü");
        assert_eq!(clean_line("a\x1b]0;pwned\x07b"), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(clean_line("x\ny"), "x\\u{a}y");
        assert_eq!(clean("x\ny", true), "x\ny");
        assert_eq!(clean_line("\u{202E}txt"), "\\u{202e}txt");
        assert_eq!(clean_line("\u{9b}31m"), "\\u{9b}31m");
    }
}
