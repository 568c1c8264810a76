"""The operator's web dashboard (``/dashboard``): performance, security, business and operations,
from the managers the app runs, for a tenant's admins (their tenant) and the platform (every
tenant). See docs/dashboard.md."""

from tenantry.dashboard.auth import COOKIE, Viewer, dashboard_viewer
from tenantry.dashboard.data import Overview

__all__ = ["COOKIE", "Overview", "Viewer", "dashboard_viewer"]
