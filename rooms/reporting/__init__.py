"""Looking back at consults: supervisor review, statistics, the FHIR export."""
