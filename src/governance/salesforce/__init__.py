"""Salesforce sync: opportunities in, governance results and outcomes out."""
