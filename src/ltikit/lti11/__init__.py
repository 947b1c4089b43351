"""LTI 1.1: OAuth 1.0a-signed launches and Basic Outcomes, independent of any web framework."""

from .consumers import ConsumerRegistry, consumers_from_config
from .launch import VerifiedLaunch, verify_launch
from .signature import OAuthRequest

__all__ = ["ConsumerRegistry", "OAuthRequest", "VerifiedLaunch", "consumers_from_config",
           "verify_launch"]
