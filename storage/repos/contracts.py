"""Contracts, installments (invoices), payments and allocations."""
from __future__ import annotations

from storage.models import Contract
from storage.repos.base import Repository


class ContractRepository(Repository[Contract]):
    model = Contract
