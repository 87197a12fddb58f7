"""Delivery channels: SMTP now; postal letters and Altinn later."""
