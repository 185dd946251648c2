//! The displayed name of a user, formatted exactly like bluesky-httpserver.

/// `jdoe`, `jdoe <jdoe@example.org>`, `jdoe "John Doe"` or `jdoe "John Doe <jdoe@example.org>"`;
/// an empty name or email counts as absent.
pub fn displayed_name(username: &str, name: Option<&str>, email: Option<&str>) -> String {
    let name = name.filter(|name| !name.is_empty());
    let email = email.filter(|email| !email.is_empty());
    match (name, email) {
        (None, None) => username.to_owned(),
        (None, Some(email)) => format!("{username} <{email}>"),
        (Some(name), None) => format!("{username} \"{name}\""),
        (Some(name), Some(email)) => format!("{username} \"{name} <{email}>\""),
    }
}

#[cfg(test)]
mod tests {
    use super::displayed_name;

    #[test]
    fn the_four_bluesky_forms() {
        assert_eq!(displayed_name("jdoe", None, None), "jdoe");
        assert_eq!(displayed_name("jdoe", None, Some("j@x.org")), "jdoe <j@x.org>");
        assert_eq!(
            displayed_name("jdoe", Some("John Doe"), None),
            "jdoe \"John Doe\""
        );
        assert_eq!(
            displayed_name("jdoe", Some("John Doe"), Some("j@x.org")),
            "jdoe \"John Doe <j@x.org>\""
        );
    }

    #[test]
    fn empty_values_count_as_absent() {
        assert_eq!(displayed_name("jdoe", Some(""), Some("")), "jdoe");
    }
}
