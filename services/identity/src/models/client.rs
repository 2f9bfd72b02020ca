use chrono::{DateTime, Utc};
use custodian_auth::Role;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::oauth_clients;

/// An OAuth2 client of the client_credentials grant (another system).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_clients, check_for_backend(diesel::pg::Pg))]
pub struct Client {
    pub client_id: String,
    pub secret_hash: String,
    pub name: String,
    pub role: String,
    pub organization_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl Client {
    pub fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = oauth_clients)]
pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub secret_hash: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub organization_id: Option<Uuid>,
}

pub async fn insert(conn: &mut AsyncPgConnection, client: NewClient<'_>) -> QueryResult<Client> {
    diesel::insert_into(oauth_clients::table)
        .values(client)
        .returning(Client::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, client_id: &str) -> QueryResult<Option<Client>> {
    oauth_clients::table
        .find(client_id)
        .select(Client::as_select())
        .first(conn)
        .await
        .optional()
}
