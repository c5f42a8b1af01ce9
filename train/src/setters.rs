//! `setters!`: builder-style setters for the plain config structs (`DataConfig::default()
//! .img_size(28).batch_size(64)`), one per listed field. `field: T` takes a `T`; `field?: T`
//! sets an `Option<T>` field to `Some`; a leading `into` takes anything `Into<T>` (`&str` for
//! a `String`).

/// Writes `pub fn field(self, value) -> Self` for each listed field of `$ty`.
macro_rules! setters {
    ($ty:ty { $($body:tt)* }) => {
        impl $ty {
            setters!(@munch $($body)*);
        }
    };
    (@munch) => {};
    (@munch into $field:ident ? : $t:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($field), "` to `Some(value)`.")]
        #[must_use]
        pub fn $field(mut self, value: impl Into<$t>) -> Self {
            self.$field = Some(value.into());
            self
        }
        setters!(@munch $($($rest)*)?);
    };
    (@munch into $field:ident : $t:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $field(mut self, value: impl Into<$t>) -> Self {
            self.$field = value.into();
            self
        }
        setters!(@munch $($($rest)*)?);
    };
    (@munch $field:ident ? : $t:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($field), "` to `Some(value)`.")]
        #[must_use]
        pub fn $field(mut self, value: $t) -> Self {
            self.$field = Some(value);
            self
        }
        setters!(@munch $($($rest)*)?);
    };
    (@munch $field:ident : $t:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $field(mut self, value: $t) -> Self {
            self.$field = value;
            self
        }
        setters!(@munch $($($rest)*)?);
    };
}

pub(crate) use setters;
