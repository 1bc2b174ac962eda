//! Text shown to people: names that other parties chose.
//!
//! A display name may carry control characters (terminal escapes, newlines that forge extra
//! lines) or Unicode bidirectional controls (U+202E turns `evil\u{202E}txt.exe` into
//! `eviltxt.exe`-lookalikes). [`display_name`] strips both, wherever a name is stored or shown.

/// Bidirectional formatting characters: embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `name` without control or bidi characters, trimmed.
pub fn display_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect::<String>()
        .trim()
        .to_string()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_stripped() {
        assert_eq!(display_name("ali\u{202E}ce\u{1b}[31m\n"), "alice[31m");
        assert_eq!(display_name(" 내 이름 \u{2066}x\u{2069}"), "내 이름 x");
        assert_eq!(display_name("plain"), "plain");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_bytes("안녕", 4), "안");
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }
}
