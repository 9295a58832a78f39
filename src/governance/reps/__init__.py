"""Rep profiles: team, region and negotiation style, so analytics and coaching can group by them."""
