"""Exact formulations, one subpackage per problem family."""
