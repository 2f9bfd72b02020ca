use chrono::{DateTime, Utc};
use custodian_auth::Role;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::users;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub organization_id: Option<Uuid>,
    pub department: Option<String>,
    pub practitioner_ref: Option<String>,
    pub patient_ref: Option<String>,
    pub suspended: bool,
    pub suspended_reason: Option<String>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// The role; `None` only if the table holds a role this build does not know.
    pub fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }

    /// `Organization/<id>` when the user acts for one.
    pub fn organization_ref(&self) -> Option<String> {
        self.organization_id
            .map(crate::domain::OrganizationId::reference)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub organization_id: Option<Uuid>,
    pub department: Option<&'a str>,
    pub practitioner_ref: Option<&'a str>,
    pub patient_ref: Option<&'a str>,
}

pub async fn insert(conn: &mut AsyncPgConnection, user: NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(user)
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// The row locked until the end of the caller's transaction.
pub async fn find_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn find_by_username(
    conn: &mut AsyncPgConnection,
    username: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn set_password_and_role(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    password_hash: &str,
    role: Role,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Suspends (`Some(reason)`) or reinstates (`None`) a user.
pub async fn set_suspended(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: Option<&str>,
) -> QueryResult<User> {
    let (suspended, at) = match reason {
        Some(_) => (true, Some(Utc::now())),
        None => (false, None),
    };
    diesel::update(users::table.find(id))
        .set((
            users::suspended.eq(suspended),
            users::suspended_reason.eq(reason),
            users::suspended_at.eq(at),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

pub async fn suspended_ids(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Uuid>> {
    users::table
        .filter(users::suspended)
        .select(users::id)
        .order(users::id)
        .load(conn)
        .await
}
