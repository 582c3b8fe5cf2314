//! Ids that must not be mixed up: a statement that takes a reply and a user
//! takes a [`ReplyId`] and a [`UserId`], so passing them in the wrong order
//! does not compile. Each is the table's `bigint` key.

macro_rules! id {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The id of ", $what, ".")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(UserId, "a user");
id!(CategoryId, "a category");
id!(TopicId, "a topic");
id!(ReplyId, "a reply");
