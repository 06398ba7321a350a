"""Knowledge base shipped as package data: rules.json (escalation), causes.json (causes, evidence,
advice), questions.json (questionnaire), cohort.json (generative model of the synthetic
training cohort) and the trained cause model (cause_model.skops + cause_model.json)."""
