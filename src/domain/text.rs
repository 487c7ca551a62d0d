//! Free text from the network: trimmed, length-checked, free of NUL and other control characters.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong(usize),
    ControlCharacter,
}

impl TextError {
    pub fn describe(&self) -> String {
        match self {
            TextError::Empty => "must not be blank".into(),
            TextError::TooLong(max) => format!("must be at most {max} characters"),
            TextError::ControlCharacter => "must not contain NUL or control characters".into(),
        }
    }
}

/// Trims `raw` and checks it: `min` 0 allows empty text, `max` counts characters.
pub fn clean_text(raw: &str, min: usize, max: usize) -> Result<String, TextError> {
    let text = raw.trim();
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(TextError::ControlCharacter);
    }
    let count = text.chars().count();
    if count < min {
        return Err(TextError::Empty);
    }
    if count > max {
        return Err(TextError::TooLong(max));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(clean_text("  Sales  ", 1, 10), Ok("Sales".into()));
        assert_eq!(clean_text("   ", 1, 10), Err(TextError::Empty));
        assert_eq!(clean_text("", 0, 10), Ok(String::new()));
        assert_eq!(clean_text("abcdef", 1, 5), Err(TextError::TooLong(5)));
        assert_eq!(clean_text("ééééé", 1, 5), Ok("ééééé".into()));
    }

    #[test]
    fn refuses_nul_and_control_characters() {
        assert_eq!(clean_text("a\0b", 1, 10), Err(TextError::ControlCharacter));
        assert_eq!(
            clean_text("a\u{1b}b", 1, 10),
            Err(TextError::ControlCharacter)
        );
        assert!(clean_text("line\nline", 1, 20).is_ok());
    }
}
