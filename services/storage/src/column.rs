//! The storage service's newtypes as columns: each is stored as its one field, as
//! `#[derive(sqlx::Type)] #[sqlx(transparent)]` would make it. The derive needs `sqlx-macros`,
//! which a clean build compiles with sqlx and SQLite a second time, for the build machine
//! (decision 0016).

/// Implements sqlx's `Type`, `Encode` and `Decode` for `$newtype` (a tuple struct of one
/// `$inner`) on every backend whose `$inner` has them, and `PgHasArrayType`, as `$inner`'s.
macro_rules! transparent_column {
    ($newtype:ident($inner:ty)) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $newtype
        where
            $inner: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$inner as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$inner as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $newtype
        where
            $inner: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <$inner as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
            }

            fn produces(&self) -> Option<DB::TypeInfo> {
                <$inner as sqlx::Encode<'q, DB>>::produces(&self.0)
            }

            fn size_hint(&self) -> usize {
                <$inner as sqlx::Encode<'q, DB>>::size_hint(&self.0)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $newtype
        where
            $inner: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                <$inner as sqlx::Decode<'r, DB>>::decode(value).map(Self)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $newtype {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <$inner as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }
    };
}

pub(crate) use transparent_column;
