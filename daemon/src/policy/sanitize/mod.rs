//! Sanitising what a sender controls before clawlink frames it for the agent.
//!
//! Two things reach the model from a sender: its **name** (in clawlink's own framing lines)
//! and its **content** (inside OpenClaw's untrusted-content wrapper). A sender must not be able
//! to make either look like framing:
//!
//! - [`name`]: control characters (newlines included), bidi overrides and isolates, zero-width
//!   and other invisible format characters are removed; `"` becomes `'` (names are framed in
//!   double quotes); runs of spaces collapse; marker lookalikes are neutralised; capped.
//! - [`content`]: control characters other than newline and tab, bidi and invisible format
//!   characters are removed; anything that looks like a wrapper marker is replaced:
//!   OpenClaw's `<<<EXTERNAL_UNTRUSTED_CONTENT id="…">>>` / `<<<END_EXTERNAL_UNTRUSTED_CONTENT …>>>`
//!   (also when spelt with full-width letters, angle-bracket homoglyphs, spaces or zero-width
//!   characters in between) → [`MARKER_REPLACEMENT`]; clawlink's own `[clawlink]` tag →
//!   `(clawlink)`; chat-template special tokens (`<|im_start|>`, `[INST]`, `<|eot_id|>`, …)
//!   → [`TOKEN_REPLACEMENT`]. Then the text is capped at a number of characters, and a cut
//!   text ends with an explicit line saying how much was kept ([`truncation_marker`]).
//!
//! Detection works on a folded copy (full-width ASCII → ASCII, angle homoglyphs → `<` `>`,
//! lower case, whitespace, `_` and `-` dropped) that maps back to the original byte ranges, so
//! only the lookalike itself is replaced and the rest of the text is kept as sent.

/// What a wrapper-marker lookalike becomes.
pub const MARKER_REPLACEMENT: &str = "[[MARKER_SANITIZED]]";
/// What a chat-template special token becomes.
pub const TOKEN_REPLACEMENT: &str = "[REMOVED_SPECIAL_TOKEN]";
/// What clawlink's own tag becomes inside sender text.
pub const TAG_REPLACEMENT: &str = "(clawlink)";

/// Folded needles (see the module doc) and what replaces them.
const NEEDLES: &[(&str, &str)] = &[
    ("externaluntrustedcontent", MARKER_REPLACEMENT),
    ("[clawlink]", TAG_REPLACEMENT),
    ("<|im_start|>", TOKEN_REPLACEMENT),
    ("<|im_end|>", TOKEN_REPLACEMENT),
    ("<|endoftext|>", TOKEN_REPLACEMENT),
    ("<|begin_of_text|>", TOKEN_REPLACEMENT),
    ("<|end_of_text|>", TOKEN_REPLACEMENT),
    ("<|start_header_id|>", TOKEN_REPLACEMENT),
    ("<|end_header_id|>", TOKEN_REPLACEMENT),
    ("<|eot_id|>", TOKEN_REPLACEMENT),
    ("<|eom_id|>", TOKEN_REPLACEMENT),
    ("<|python_tag|>", TOKEN_REPLACEMENT),
    ("<|channel|>", TOKEN_REPLACEMENT),
    ("<|message|>", TOKEN_REPLACEMENT),
    ("<|return|>", TOKEN_REPLACEMENT),
    ("<|call|>", TOKEN_REPLACEMENT),
    ("[inst]", TOKEN_REPLACEMENT),
    ("[/inst]", TOKEN_REPLACEMENT),
    ("<<sys>>", TOKEN_REPLACEMENT),
    ("<</sys>>", TOKEN_REPLACEMENT),
    ("<startofturn>", TOKEN_REPLACEMENT),
    ("<endofturn>", TOKEN_REPLACEMENT),
];

/// Characters removed everywhere: bidi embeddings, overrides and isolates, marks, and
/// invisible format characters (zero-width space/joiners, word joiner, BOM, soft hyphen).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}'
        | '\u{180E}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The folded form of one character for detection; `None` drops it.
fn fold(c: char) -> Option<char> {
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{2039}' | '\u{27E8}' | '\u{3008}' | '\u{2329}' | '\u{FE64}' | '\u{00AB}'
        | '\u{300A}' | '\u{27EA}' | '\u{27EC}' | '\u{27EE}' | '\u{276C}' | '\u{276E}'
        | '\u{02C2}' => '<',
        '\u{203A}' | '\u{27E9}' | '\u{3009}' | '\u{232A}' | '\u{FE65}' | '\u{00BB}'
        | '\u{300B}' | '\u{27EB}' | '\u{27ED}' | '\u{27EF}' | '\u{276D}' | '\u{276F}'
        | '\u{02C3}' => '>',
        c => c,
    };
    if invisible(c) || c.is_whitespace() || c == '_' || c == '-' || c.is_control() {
        return None;
    }
    Some(c.to_ascii_lowercase())
}

/// Replaces every lookalike in `text`; the rest is kept byte for byte.
fn neutralise(text: &str) -> String {
    // folded text, and for each of its chars the original byte range.
    let mut folded = String::with_capacity(text.len());
    let mut map: Vec<(usize, usize, usize)> = Vec::new(); // (folded byte, orig start, orig end)
    for (i, c) in text.char_indices() {
        if let Some(f) = fold(c) {
            map.push((folded.len(), i, i + c.len_utf8()));
            folded.push(f);
        }
    }
    let entry = |fbyte: usize| map.partition_point(|m| m.0 < fbyte);
    let mut cuts: Vec<(usize, usize, &str)> = Vec::new();
    for (needle, with) in NEEDLES {
        for (at, _) in folded.match_indices(needle) {
            let (mut first, mut last) = (entry(at), entry(at + needle.len()) - 1);
            if *with == MARKER_REPLACEMENT {
                (first, last) = widen_marker(&folded, &map, first, last);
            }
            cuts.push((map[first].1, map[last].2, with));
        }
    }
    if cuts.is_empty() {
        return text.to_string();
    }
    cuts.sort_by_key(|c| (c.0, std::cmp::Reverse(c.1)));
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, end, with) in cuts {
        if start < pos {
            continue;
        }
        out.push_str(&text[pos..start]);
        out.push_str(with);
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Extends a marker keyword match over `<<<`, a leading `end`, and a trailing `id="…">>>`
/// (within 80 folded characters), so the whole lookalike goes.
fn widen_marker(
    folded: &str,
    map: &[(usize, usize, usize)],
    mut first: usize,
    mut last: usize,
) -> (usize, usize) {
    let ch = |i: usize| folded[map[i].0..].chars().next().unwrap_or(' ');
    if first >= 3 && folded[map[first - 3].0..map[first].0].eq("end") {
        first -= 3;
    }
    while first > 0 && ch(first - 1) == '<' {
        first -= 1;
    }
    let limit = (last + 80).min(map.len() - 1);
    if let Some(close) = (last + 1..=limit).find(|&i| ch(i) == '>') {
        last = close;
        while last + 1 < map.len() && ch(last + 1) == '>' {
            last += 1;
        }
    }
    (first, last)
}

/// A sender-controlled name, safe to put on one framing line in double quotes.
pub fn name(raw: &str, max_chars: usize) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if c == '"' { '\'' } else { c })
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control() && !invisible(*c))
        .collect();
    let neutral = neutralise(&cleaned);
    let mut out = String::with_capacity(neutral.len());
    for word in neutral.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.chars().take(max_chars).collect()
}

/// The line that ends a cut text.
pub fn truncation_marker(kept: usize, total: usize) -> String {
    format!("[clawlink: truncated, {kept} of {total} characters shown; the whole message is in the inbox]")
}

/// Sender-controlled content, neutralised and capped at `max_chars` characters (plus the
/// truncation line when cut). Returns the text and whether it was cut.
pub fn content(raw: &str, max_chars: usize) -> (String, bool) {
    let cleaned: String = raw
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !(c.is_control() || invisible(c)))
        .collect();
    let neutral = neutralise(&cleaned);
    let total = neutral.chars().count();
    if total <= max_chars {
        return (neutral, false);
    }
    let mut kept: String = neutral.chars().take(max_chars).collect();
    kept.push('\n');
    kept.push_str(&truncation_marker(max_chars, total));
    (kept, true)
}

#[cfg(test)]
mod tests;
